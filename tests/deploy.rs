//! The deployment agrees with the code: the Dockerfile builds what builds here, runs it as a
//! non-root user on a base that can run it, and the infrastructure in `infra/` sets only real
//! settings and grants every model the app can call. No Docker engine is needed: these read
//! the files (`infra/check` lints them and synthesises the stack).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use atelier_shared::config::{DEFAULT_CHAT_MODEL, DEFAULT_CLASSIFIER_MODEL, SETTINGS};
use atelier_shared::engine::catalog::Catalog;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repository().join(path)).unwrap_or_else(|error| panic!("reading {path}: {error}"))
}

/// One instruction of a Dockerfile: `RUN cargo build …` is `("RUN", "cargo build …")`.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    arguments: String,
}

/// A build stage: its base image, its name, and its instructions after `FROM`.
#[derive(Debug)]
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> impl Iterator<Item = &str> {
        self.instructions.iter().filter(move |instruction| instruction.keyword == keyword).map(|i| i.arguments.as_str())
    }

    fn last(&self, keyword: &str) -> Option<&str> {
        self.all(keyword).last()
    }

    /// The working directory at the end of the stage: its own last `WORKDIR`, else the one of
    /// the stage it is built `FROM`, else `/`.
    fn workdir<'a>(&'a self, stages: &'a [Stage]) -> &'a str {
        match self.last("WORKDIR") {
            Some(workdir) => workdir,
            None => match stages.iter().find(|stage| stage.name.as_deref() == Some(self.image.as_str())) {
                Some(parent) => parent.workdir(stages),
                None => "/",
            },
        }
    }
}

/// The Dockerfile's stages, with continuation lines joined and comments dropped.
fn stages(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(continued) => {
                current.push_str(continued.trim());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical.into_iter().filter(|line| !line.is_empty()) {
        let (keyword, arguments) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let arguments = arguments.split_whitespace().collect::<Vec<_>>().join(" ");
        if keyword == "FROM" {
            let words: Vec<&str> = arguments.split(' ').filter(|word| !word.starts_with("--")).collect();
            let name = match words.as_slice() {
                [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => Some((*name).to_string()),
                _ => None,
            };
            stages.push(Stage { image: words[0].to_string(), name, instructions: Vec::new() });
        } else {
            stages
                .last_mut()
                .expect("an instruction before the first FROM")
                .instructions
                .push(Instruction { keyword, arguments });
        }
    }
    stages
}

fn dockerfile() -> Vec<Stage> {
    let stages = stages(&read("Dockerfile"));
    assert!(stages.len() >= 2, "the Dockerfile is multi-stage: {stages:?}");
    stages
}

/// The `[[bin]]` names in the root Cargo.toml.
fn binaries() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(value) = line.strip_prefix("name") {
            names.push(value.trim_start().trim_start_matches('=').trim().trim_matches('"').to_string());
        }
    }
    names
}

/// The workspace's `rust-version`, such as `1.95`.
fn rust_version() -> String {
    let manifest = read("Cargo.toml");
    let line = manifest
        .lines()
        .find(|line| line.trim_start().starts_with("rust-version"))
        .expect("rust-version in Cargo.toml");
    line.split('=').nth(1).unwrap().trim().trim_matches('"').to_string()
}

/// The `RUN` arguments that invoke `cargo <subcommand>`, split into words.
fn cargo_runs<'a>(stage: &'a Stage, subcommand: &str) -> Vec<Vec<&'a str>> {
    let prefix = format!("cargo {subcommand} ");
    stage
        .all("RUN")
        .flat_map(|run| run.split("&&").map(str::trim))
        .filter(|command| command.starts_with(&prefix))
        .map(|command| command.split(' ').collect())
        .collect()
}

fn flag_value<'a>(words: &[&'a str], flag: &str) -> Option<&'a str> {
    words.iter().position(|word| *word == flag).and_then(|at| words.get(at + 1).copied())
}

#[test]
fn the_dockerfile_builds_the_atelier_binary_with_the_locked_dependencies_in_release() {
    let stages = dockerfile();
    let builds: Vec<(&Stage, Vec<&str>)> = stages
        .iter()
        .flat_map(|stage| cargo_runs(stage, "build").into_iter().map(move |words| (stage, words)))
        .collect();
    assert_eq!(builds.len(), 1, "one cargo build in the Dockerfile: {builds:?}");
    let (_, build) = &builds[0];
    assert!(build.contains(&"--release"), "the image is built with the release profile: {build:?}");
    assert!(build.contains(&"--locked"), "the image is built from Cargo.lock: {build:?}");
    let binary = flag_value(build, "--bin").expect("the build names its binary");
    assert!(binaries().contains(&binary.to_string()), "{binary} is a [[bin]] of Cargo.toml: {:?}", binaries());
    assert_eq!(binary, "atelier");
    for word in build.iter().skip(2) {
        assert!(["--release", "--locked", "--bin", binary].contains(word), "unexpected build option {word}: {build:?}");
    }
}

#[test]
fn dependencies_are_cooked_with_the_same_profile_and_lock_as_the_build() {
    let stages = dockerfile();
    let cooks: Vec<Vec<&str>> = stages.iter().flat_map(|stage| cargo_runs(stage, "chef")).collect();
    let cook =
        cooks.iter().find(|words| words.get(2) == Some(&"cook")).expect("cargo chef cook caches the dependencies");
    assert!(cooks.iter().any(|words| words.get(2) == Some(&"prepare")), "cargo chef prepare makes the recipe");
    assert!(
        cook.contains(&"--release") && cook.contains(&"--locked"),
        "cook matches the build's profile and lock: {cook:?}"
    );
    assert_eq!(flag_value(cook, "--bin"), Some("atelier"), "cook prepares the same binary's dependencies");
}

#[test]
fn the_builder_uses_the_workspace_toolchain_on_the_runtime_debian() {
    let stages = dockerfile();
    let builder = &stages[0];
    let (name, tag) = builder.image.split_once(':').expect("the builder image is pinned by tag");
    assert_eq!(name, "rust", "the official Rust image");
    let toolchain = tag.split('-').next().unwrap();
    assert_eq!(toolchain, rust_version(), "the builder's Rust is the workspace's rust-version");
    // The binary links against the builder's glibc: the runtime must be the same Debian release.
    let runtime = stages.last().unwrap();
    assert!(tag.contains("bookworm"), "the builder is Debian 12 (bookworm): {tag}");
    assert!(
        runtime.image.contains("debian12") || runtime.image.contains("bookworm"),
        "the runtime is Debian 12 too: {}",
        runtime.image
    );
    for stage in &stages {
        assert!(stage.image.contains(':') || stages.iter().any(|other| other.name.as_deref() == Some(&stage.image)));
        assert!(!stage.image.ends_with(":latest"), "{} is pinned to a version", stage.image);
    }
}

#[test]
fn the_image_runs_the_built_binary_as_a_non_root_user() {
    let stages = dockerfile();
    let runtime = stages.last().unwrap();
    // The user: a numeric uid other than 0, so that any runtime can tell it is not root.
    let user = runtime.last("USER").expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    let uid: u32 = uid.parse().unwrap_or_else(|_| panic!("USER {user} is numeric"));
    assert_ne!(uid, 0, "the image does not run as root");
    // The binary copied in is the one the build stage produced.
    let build_stage = stages.iter().find(|stage| !cargo_runs(stage, "build").is_empty()).unwrap();
    let built = Path::new(build_stage.workdir(&stages)).join("target/release/atelier");
    let copies: Vec<Vec<&str>> = runtime.all("COPY").map(|copy| copy.split(' ').collect()).collect();
    // The binary and the spool's empty folder (the_spool_is_a_volume_…), nothing else.
    assert_eq!(copies.len(), 2, "the runtime stage copies the binary and the spool folder only: {copies:?}");
    let words = copies
        .iter()
        .find(|words| words.iter().any(|word| Path::new(word) == built))
        .unwrap_or_else(|| panic!("a COPY of {} into the runtime: {copies:?}", built.display()));
    let from = words[0].strip_prefix("--from=").expect("copied from the build stage");
    assert_eq!(Some(from), build_stage.name.as_deref(), "copied from the stage that ran cargo build");
    assert_eq!(Path::new(words[1]), built, "the copied path is where cargo build puts the binary");
    let installed = words[2];
    let entrypoint = runtime.last("ENTRYPOINT").expect("an ENTRYPOINT");
    assert_eq!(entrypoint, format!("[\"{installed}\"]"), "the entrypoint is the copied binary");
    assert!(runtime.last("HEALTHCHECK").is_none(), "health is the load balancer's job (/healthz)");
}

/// The arguments of a `VOLUME` instruction: `["/a", "/b"]` or `/a /b`.
fn volume_paths(arguments: &str) -> Vec<String> {
    let inner = arguments.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split([',', ' '])
        .map(|path| path.trim().trim_matches('"').to_string())
        .filter(|path| !path.is_empty())
        .collect()
}

#[test]
fn the_spool_is_a_volume_the_non_root_user_owns_at_the_path_the_stack_mounts() {
    let stages = dockerfile();
    let runtime = stages.last().unwrap();
    // The app's spool setting, the image's volume and the stack's mount are one path.
    let spool =
        runtime.all("ENV").find_map(|env| env.strip_prefix("ATELIER_SPOOL_DIR=")).expect("ENV ATELIER_SPOOL_DIR");
    assert!(spool.starts_with('/'), "an absolute path: {spool}");
    let volumes: Vec<String> = runtime.all("VOLUME").flat_map(volume_paths).collect();
    assert_eq!(volumes, [spool], "the spool, and only it, is a volume of the image");
    let stack = read("infra/lib/atelier-stack.ts");
    assert!(
        stack.contains(&format!("export const SPOOL_DIR = '{spool}';")),
        "the stack mounts the task's volume at {spool} (SPOOL_DIR): Fargate fills a bind mount from the image only when the \
         paths match"
    );
    assert!(stack.contains("ATELIER_SPOOL_DIR: SPOOL_DIR"), "the stack sets ATELIER_SPOOL_DIR to the mounted path");

    // The folder is in the image before the VOLUME (later changes to it would be dropped),
    // copied from the build stage and owned by the user the image runs as: Fargate gives the
    // volume that owner, and otherwise root's.
    let position = |keyword: &str, wanted: &dyn Fn(&str) -> bool| {
        runtime
            .instructions
            .iter()
            .position(|instruction| instruction.keyword == keyword && wanted(&instruction.arguments))
    };
    let user = runtime.last("USER").expect("USER");
    let copy_at = position("COPY", &|arguments| {
        let destination = arguments.split(' ').next_back().unwrap();
        Path::new(spool).starts_with(destination)
    })
    .expect("a COPY makes the spool folder");
    let copy: Vec<&str> = runtime.instructions[copy_at].arguments.split(' ').collect();
    assert!(
        copy.contains(&format!("--chown={user}").as_str()),
        "the spool folder is owned by the image's user ({user}): {copy:?}"
    );
    let from = copy.iter().find_map(|word| word.strip_prefix("--from=")).expect("copied from a build stage");
    let (source, destination) = (copy[copy.len() - 2], copy[copy.len() - 1]);
    let made = Path::new(source).join(Path::new(spool).strip_prefix(destination).unwrap());
    let from_stage = stages.iter().find(|stage| stage.name.as_deref() == Some(from)).expect("the stage copied from");
    assert!(
        from_stage.all("RUN").any(|run| run.contains(&format!("mkdir -p {}", made.display()))),
        "stage {from} makes {}",
        made.display()
    );
    let volume_at = position("VOLUME", &|_| true).unwrap();
    assert!(copy_at < volume_at, "the folder is made before it is declared a volume");
}

#[test]
fn the_image_listens_where_the_stack_sends_traffic() {
    let stages = dockerfile();
    let runtime = stages.last().unwrap();
    let bind = runtime.all("ENV").find_map(|env| env.strip_prefix("ATELIER_BIND=")).expect("ENV ATELIER_BIND");
    let port = bind.rsplit(':').next().unwrap();
    assert!(bind.starts_with("0.0.0.0:"), "the container listens on every interface: {bind}");
    assert_eq!(runtime.last("EXPOSE"), Some(port));
    let stack = read("infra/lib/atelier-stack.ts");
    assert!(stack.contains(&format!("export const CONTAINER_PORT = {port};")), "the stack's container port is {port}");
}

#[test]
fn the_build_context_has_every_crate_and_no_build_output() {
    let ignore = read(".dockerignore");
    let rules: Vec<&str> =
        ignore.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).collect();
    assert_eq!(rules.first(), Some(&"*"), "an allow-list: everything is left out unless named");
    let manifest = read("Cargo.toml");
    let members_line = manifest.lines().find(|line| line.starts_with("members")).expect("workspace members");
    let members: Vec<&str> = members_line.split('"').skip(1).step_by(2).collect();
    assert!(!members.is_empty());
    for needed in members.iter().copied().chain(["src", "tests"]) {
        assert!(rules.contains(&format!("!{needed}/").as_str()), ".dockerignore lets {needed}/ in");
    }
    for needed in ["Cargo.toml", "Cargo.lock"] {
        assert!(rules.contains(&format!("!{needed}").as_str()), ".dockerignore lets {needed} in");
    }
    assert!(rules.contains(&"**/target"), "build output never goes into the context");
}

#[test]
fn the_stack_sets_only_settings_the_app_reads() {
    let stack = read("infra/lib/atelier-stack.ts");
    let known: BTreeSet<&str> = SETTINGS.iter().map(|(name, _)| *name).collect();
    let mut used = BTreeSet::new();
    for (at, _) in stack.match_indices("ATELIER_") {
        let name: String =
            stack[at..].chars().take_while(|character| character.is_ascii_uppercase() || *character == '_').collect();
        // `ATELIER_*` in a comment names them all, not one.
        if name.len() > "ATELIER_".len() {
            used.insert(name);
        }
    }
    for required in [
        "ATELIER_BIND",
        "ATELIER_PUBLIC_URL",
        "ATELIER_STORE",
        "ATELIER_DISCORD_TOKEN",
        "ATELIER_OIDC_ISSUER",
        "ATELIER_SPOOL_DIR",
        "ATELIER_SHUTDOWN_DRAIN_SECONDS",
        "ATELIER_SHUTDOWN_GRACE_SECONDS",
        "ATELIER_MAX_RUNNING_JOBS",
    ] {
        assert!(used.contains(required), "the stack sets {required}");
    }
    for name in &used {
        assert!(
            known.contains(name.as_str()),
            "the stack sets {name}, which is not in SETTINGS (shared/src/config/mod.rs)"
        );
    }
    assert!(
        stack.contains(&format!("export const CALLBACK_PATH = '{}';", atelier_shared::oidc::CALLBACK_PATH)),
        "the Cognito callback URL is the app's sign-in callback"
    );
}

/// The stack sets settings as environment variables, and the app takes from the environment
/// only the names in SETTINGS: a name shared/src/config/ reads but SETTINGS lacks would be set in the
/// task and silently ignored (flagged as misspelt).
#[test]
fn every_setting_the_app_reads_can_be_set_from_the_environment() {
    // Every section of shared/src/config/ but its unit tests (which spell names wrong on purpose).
    let mut sections: Vec<PathBuf> = std::fs::read_dir(repository().join("shared/src/config"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "rs") && !path.ends_with("tests.rs"))
        .collect();
    sections.sort();
    let config: String = sections.iter().map(|path| std::fs::read_to_string(path).unwrap()).collect();
    let known: BTreeSet<&str> = SETTINGS.iter().map(|(name, _)| *name).collect();
    let mut read_names = BTreeSet::new();
    for (at, _) in config.match_indices("\"ATELIER_") {
        let name: String = config[at + 1..]
            .chars()
            .take_while(|character| character.is_ascii_uppercase() || character.is_ascii_digit() || *character == '_')
            .collect();
        // `"ATELIER_"` alone is the prefix the environment is filtered by, not a setting.
        if name.len() > "ATELIER_".len() && config[at + 1 + name.len()..].starts_with('"') {
            read_names.insert(name);
        }
    }
    assert!(read_names.contains("ATELIER_SHUTDOWN_GRACE_SECONDS"), "found the names: {read_names:?}");
    let missing: Vec<&String> = read_names.iter().filter(|name| !known.contains(name.as_str())).collect();
    assert!(missing.is_empty(), "shared/src/config/ reads settings that are not in SETTINGS: {missing:?}");
}

#[test]
fn the_task_role_may_call_every_model_the_app_uses_by_default() {
    let cdk: serde_json::Value = serde_json::from_str(&read("infra/cdk.json")).unwrap();
    let context = &cdk["context"];
    let allowed: BTreeSet<&str> =
        context["bedrockModelIds"].as_array().expect("bedrockModelIds").iter().map(|id| id.as_str().unwrap()).collect();
    let catalog = Catalog::new(None, None).unwrap();
    let mut wanted: BTreeSet<&str> = catalog.entries().iter().map(|entry| entry.id.as_str()).collect();
    wanted.insert(DEFAULT_CHAT_MODEL);
    wanted.insert(DEFAULT_CLASSIFIER_MODEL);
    let missing: Vec<&&str> = wanted.difference(&allowed).collect();
    assert!(missing.is_empty(), "infra/cdk.json bedrockModelIds lacks models the app calls: {missing:?}");
    let unused: Vec<&&str> = allowed.difference(&wanted).collect();
    assert!(unused.is_empty(), "infra/cdk.json bedrockModelIds grants models the app does not call: {unused:?}");
    assert_eq!(context["chatModel"].as_str(), Some(DEFAULT_CHAT_MODEL));
    assert_eq!(context["classifierModel"].as_str(), Some(DEFAULT_CLASSIFIER_MODEL));
}
