//! The Python stand-ins that `./scripts/test` installs into `target/test-venv`.

use std::path::PathBuf;

/// The path of a program in the test virtual environment. A test that needs a stand-in
/// fails here, loudly, when it is missing, rather than skipping.
pub fn venv_program(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run ./scripts/test, which installs the test stand-ins into target/test-venv",
        path.display()
    );
    path
}
