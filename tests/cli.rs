//! The command line as operators use it.

use crate::support::discord::{APPLICATION_ID, DiscordStandIn};
use crate::support::{self, atelier, png_text, run};

#[test]
fn help_lists_every_subcommand() {
    let folder = tempfile::tempdir().unwrap();
    let (output, stdout, _) = run(atelier(folder.path()).arg("--help"));
    assert!(output.status.success());
    for command in ["serve", "generate", "edit", "check", "chat", "settings", "config", "register-commands"] {
        assert!(stdout.contains(&format!("\n  {command} ")), "--help does not list {command}:\n{stdout}");
    }
    let (_, generate_help, _) = run(atelier(folder.path()).args(["generate", "--help"]));
    for flag in ["--prompt", "--negative", "--model", "--aspect", "--size", "--seed", "--count", "--style", "--out"] {
        assert!(generate_help.contains(flag), "generate --help lacks {flag}");
    }
    let (_, edit_help, _) = run(atelier(folder.path()).args(["edit", "--help"]));
    for flag in ["--image", "--mode", "--prompt", "--mask", "--mask-prompt", "--out"] {
        assert!(edit_help.contains(flag), "edit --help lacks {flag}");
    }
}

#[test]
fn config_says_what_is_ready_and_what_is_missing() {
    let folder = tempfile::tempdir().unwrap();
    let (output, stdout, _) =
        run(atelier(folder.path()).arg("config").env("ATELIER_DISCORD_TOKEN", "secret-bot-token"));
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("[ready] web app"), "{stdout}");
    assert!(stdout.contains("[ready] Discord bot"), "{stdout}");
    assert!(stdout.contains("[missing] image models (Bedrock)"), "{stdout}");
    assert!(stdout.contains("set AWS_REGION"), "{stdout}");
    assert!(stdout.contains("[missing] account linking: needs"), "{stdout}");
    assert!(stdout.contains("ATELIER_COGNITO_USER_POOL_ID"), "{stdout}");
    assert!(!stdout.contains("secret-bot-token"), "the token was printed:\n{stdout}");
    assert!(stdout.contains("(set, 16 characters, redacted)"), "{stdout}");
}

#[test]
fn config_points_out_a_misspelt_variable() {
    let folder = tempfile::tempdir().unwrap();
    let (_, stdout, _) = run(atelier(folder.path()).arg("config").env("ATELIER_STOER", "file://x"));
    assert!(stdout.contains("ATELIER_STOER: did you mean ATELIER_STORE?"), "{stdout}");
}

/// Asserts a failed start: exit code 2, one line on stderr naming the variable and a fix, no panic.
fn assert_one_clear_line(stderr: &str, status: std::process::ExitStatus, variable: &str, fix: &str) {
    assert_eq!(status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    assert!(lines[0].starts_with(&format!("error: {variable}=")), "{stderr}");
    assert!(lines[0].contains(fix), "the line does not say how to fix it: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn an_unparsable_store_stops_with_one_clear_line() {
    let folder = tempfile::tempdir().unwrap();
    let (output, _, stderr) = run(atelier(folder.path()).arg("serve").env("ATELIER_STORE", "ftp://images"));
    assert_one_clear_line(&stderr, output.status, "ATELIER_STORE", "use file://PATH");
}

#[test]
fn an_unwritable_data_folder_stops_with_one_clear_line() {
    let folder = tempfile::tempdir().unwrap();
    // A folder inside a plain file cannot be made, whoever runs the tests (even root).
    std::fs::write(folder.path().join("a-file"), "not a folder").unwrap();
    let store = format!("file://{}/a-file/data", folder.path().display());
    let (output, _, stderr) = run(atelier(folder.path()).arg("serve").env("ATELIER_STORE", &store));
    assert_one_clear_line(&stderr, output.status, "ATELIER_STORE", "choose a folder this user can write");
}

#[test]
fn a_taken_bind_address_stops_with_one_clear_line() {
    let folder = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let store = format!("file://{}/data", folder.path().display());
    let (output, _, stderr) =
        run(atelier(folder.path()).arg("serve").env("ATELIER_BIND", &address).env("ATELIER_STORE", &store));
    assert_one_clear_line(&stderr, output.status, "ATELIER_BIND", "already in use");
    assert!(stderr.contains("set ATELIER_BIND to a free address"), "{stderr}");
}

#[test]
fn generate_writes_demo_pngs_and_keeps_them_in_the_gallery() {
    let folder = tempfile::tempdir().unwrap();
    let generate = |out: &str| {
        run(atelier(folder.path()).args([
            "generate",
            "--prompt",
            "a lighthouse in a storm",
            "--seed",
            "42",
            "--size",
            "320x192",
            "--count",
            "2",
            "--out",
            out,
        ]))
    };
    let (output, stdout, stderr) = generate("first");
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Demo mode"), "the demo engine must say so: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].contains("seed 42") && lines[1].contains("seed 43"), "{stdout}");

    let written: Vec<std::path::PathBuf> =
        std::fs::read_dir(folder.path().join("first")).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(written.len(), 2);
    let bytes = std::fs::read(&written[0]).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(png_text(&bytes, "Software").as_deref(), Some("Atelier demo engine (no model was called)"));

    // The same prompt and seed draw the same pictures again.
    let (_, again_stdout, _) = generate("second");
    let first_by_seed = |listing: &str, seed: &str| {
        let line = listing.lines().find(|line| line.contains(&format!("seed {seed} "))).unwrap();
        std::fs::read(folder.path().join(line.split("  ").next().unwrap())).unwrap()
    };
    assert_eq!(first_by_seed(&stdout, "42"), first_by_seed(&again_stdout, "42"));

    // Both runs are in the default store, under the operator.
    let records = std::fs::read_dir(folder.path().join("atelier-data/users/local-operator/records")).unwrap().count();
    assert_eq!(records, 4);
}

/// Communities write in every language and with emoji: each prompt is drawn and kept with its
/// text, read back from the image and from the gallery's record.
#[test]
fn generate_takes_prompts_in_any_language_and_with_emoji() {
    let folder = tempfile::tempdir().unwrap();
    for (index, prompt) in ["猫がピアノを弾く", "قطة تعزف على البيانو", "a fox 🦊 in snow"].into_iter().enumerate()
    {
        let out = format!("out-{index}");
        let (output, stdout, stderr) =
            run(atelier(folder.path()).args(["generate", "--prompt", prompt, "--size", "256x256", "--out", &out]));
        assert!(output.status.success(), "{prompt}: {stderr}");
        let file = stdout.split("  ").next().unwrap().trim();
        let bytes = std::fs::read(folder.path().join(file)).unwrap();
        let description = png_text(&bytes, "Description").unwrap();
        assert!(description.contains(prompt), "{description:?}");
    }
    let records_folder = folder.path().join("atelier-data/users/local-operator/records");
    let records: Vec<String> = std::fs::read_dir(records_folder)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    assert!(records.iter().any(|record| record.contains("猫がピアノを弾く")), "{records:?}");
    assert!(records.iter().any(|record| record.contains("قطة تعزف على البيانو")), "{records:?}");
    assert!(records.iter().any(|record| record.contains("🦊")), "{records:?}");
}

#[test]
fn generate_refuses_bad_requests_before_doing_anything() {
    let folder = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--prompt", "   "], "the prompt is empty"),
        (&["--prompt", "a cat", "--aspect", "9:1"], "between 1:4 and 4:1"),
        (&["--prompt", "a cat", "--count", "9"], "ask for 1 to 4"),
        (&["--prompt", "a cat", "--model", "sdxl"], "ATELIER_ENGINE=bedrock"),
    ];
    for (arguments, expected) in cases {
        let (output, _, stderr) = run(atelier(folder.path()).arg("generate").args(arguments));
        assert_eq!(output.status.code(), Some(2), "{arguments:?}: {stderr}");
        assert!(stderr.contains(expected), "{arguments:?}: {stderr}");
    }
    let long_prompt = "a".repeat(2_001);
    let (output, _, stderr) = run(atelier(folder.path()).args(["generate", "--prompt", &long_prompt]));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("shorten it to at most 2000"), "{stderr}");
    // Nothing was made, so nothing was stored.
    assert!(!folder.path().join("atelier-data/users").exists());
}

#[test]
fn edit_turns_an_image_file_into_a_new_one() {
    let folder = tempfile::tempdir().unwrap();
    let (output, stdout, _) =
        run(atelier(folder.path()).args(["generate", "--prompt", "a red house", "--size", "256x256", "--out", "in"]));
    assert!(output.status.success());
    let source = stdout.split("  ").next().unwrap().to_string();

    let (output, stdout, stderr) =
        run(atelier(folder.path()).args(["edit", "--image", &source, "--mode", "upscale", "--out", "out"]));
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("512x512"), "{stdout}");

    let (output, _, stderr) = run(atelier(folder.path()).args([
        "edit",
        "--image",
        &source,
        "--mode",
        "inpaint",
        "--mask-prompt",
        "the door",
        "--out",
        "out",
    ]));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("inpaint needs a prompt"), "{stderr}");

    std::fs::write(folder.path().join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let (output, _, stderr) =
        run(atelier(folder.path()).args(["edit", "--image", "broken.png", "--mode", "variation"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("broken.png: the image is damaged"), "{stderr}");
}

/// White marks the region to change: `atelier edit --mask` repaints the white half.
#[test]
fn an_inpaint_repaints_the_white_side_of_the_mask() {
    let folder = tempfile::tempdir().unwrap();
    let source = support::varied_picture(256, 192);
    std::fs::write(folder.path().join("wall.png"), &source).unwrap();
    std::fs::write(folder.path().join("mask.png"), support::left_half_white_mask(256, 192)).unwrap();
    let (output, stdout, stderr) = run(atelier(folder.path()).args([
        "edit", "--image", "wall.png", "--mask", "mask.png", "--mode", "inpaint", "--prompt", "ivy", "--out", "out",
    ]));
    assert!(output.status.success(), "{stderr}");
    let written = stdout.split("  ").next().unwrap().trim();
    let after = std::fs::read(folder.path().join(written)).unwrap_or_else(|_| std::fs::read(written).unwrap());
    support::assert_only_the_left_half_changed(&source, &after);
    let (_, help, _) = run(atelier(folder.path()).args(["edit", "--help"]));
    assert!(help.contains("white marks the region to change"), "{help}");
}

/// A Bedrock that cannot be reached is a failure of the work (exit 1), not a setting to
/// change (exit 2): nothing the person typed was wrong.
#[test]
fn an_unreachable_bedrock_exits_with_1() {
    let folder = tempfile::tempdir().unwrap();
    let closed = format!("http://127.0.0.1:{}", support::free_port());
    let (output, _, stderr) = run(atelier(folder.path())
        .env("ATELIER_ENGINE", "bedrock")
        .env("ATELIER_MODEL_TIMEOUT_SECONDS", "2")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &closed)
        .args(["generate", "--prompt", "a red house", "--model", "titan"]));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.is_empty());
}

#[test]
fn check_prints_a_critique_and_json() {
    let folder = tempfile::tempdir().unwrap();
    let (output, stdout, _) = run(atelier(folder.path()).args(["check", "--prompt", "a cat"]));
    assert!(output.status.success());
    assert!(stdout.contains("To improve:"), "{stdout}");
    assert!(stdout.contains("lighting"), "{stdout}");
    let (_, json_text, _) = run(atelier(folder.path()).args(["check", "--prompt", "a cat", "--json"]));
    let critique: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    assert!(critique["improved_prompts"].as_array().unwrap().len() >= 2, "{critique}");
    assert_eq!(critique["reviewer"], "local rules");
}

#[test]
fn chat_answers_one_message_and_holds_a_conversation() {
    use std::io::Write;
    let folder = tempfile::tempdir().unwrap();
    let (output, stdout, _) =
        run(atelier(folder.path()).args(["chat", "--mode", "prompt-coach", "--message", "a cat on a roof"]));
    assert!(output.status.success());
    assert!(stdout.contains("Demo coach, turn 1"), "{stdout}");
    assert!(stdout.contains("what should it look like"), "{stdout}");

    let mut child = atelier(folder.path())
        .args(["chat", "--mode", "coach"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a cat\na cat, oil painting\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(stdout.contains("turn 1") && stdout.contains("turn 2"), "the history was not kept:\n{stdout}");

    let (output, _, stderr) = run(atelier(folder.path()).args(["chat", "--mode", "poet", "--message", "hi"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("use one of prompt-coach"), "{stderr}");
}

#[tokio::test]
async fn register_commands_sends_the_command_list_through_the_configured_api() {
    let discord = DiscordStandIn::start().await;
    let folder = tempfile::tempdir().unwrap();
    let api_url = discord.url();
    let output = tokio::task::spawn_blocking({
        let folder = folder.path().to_path_buf();
        move || {
            run(atelier(&folder)
                .arg("register-commands")
                .env("ATELIER_DISCORD_TOKEN", "stand-in-token")
                .env("ATELIER_DISCORD_API_URL", &api_url))
        }
    })
    .await
    .unwrap();
    let (status, stdout, stderr) = (output.0.status, output.1, output.2);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("Registered 11 slash commands"), "{stdout}");

    let requests = discord.requests();
    // Without ATELIER_DISCORD_APPLICATION_ID the application is looked up from the token first.
    assert_eq!(requests[0].path, "/api/v10/oauth2/applications/@me");
    let put = requests.iter().find(|request| request.method == "PUT").expect("no commands were sent");
    assert_eq!(put.path, format!("/api/v10/applications/{APPLICATION_ID}/commands"));
    assert_eq!(put.authorization.as_deref(), Some("Bot stand-in-token"));
    let names: Vec<&str> =
        put.body.as_array().unwrap().iter().map(|command| command["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["imagine", "edit", "describe", "check", "chat", "link", "unlink", "gallery", "settings", "me", "server"]
    );
    // /server is offered only to people who may manage the server (MANAGE_GUILD, 1 << 5), in
    // servers only, with its subcommands.
    let server = &put.body[10];
    assert_eq!(server["default_member_permissions"], "32", "{server}");
    assert_eq!(server["contexts"], serde_json::json!([0]), "{server}");
    let subcommands: Vec<&str> =
        server["options"].as_array().unwrap().iter().map(|option| option["name"].as_str().unwrap()).collect();
    assert_eq!(
        subcommands,
        ["show", "channels", "models", "default-model", "budget", "role-budget", "age-policy", "moderation-channel"]
    );
    let imagine_options: Vec<&str> =
        put.body[0]["options"].as_array().unwrap().iter().map(|option| option["name"].as_str().unwrap()).collect();
    assert_eq!(imagine_options, ["prompt", "negative", "model", "aspect", "style", "seed", "count", "session"]);
    // Models, styles and the person's sessions are offered as the user types.
    assert_eq!(put.body[0]["options"][2]["autocomplete"], true);
    assert_eq!(put.body[0]["options"][7]["autocomplete"], true);
    let edit_options: Vec<&str> =
        put.body[1]["options"].as_array().unwrap().iter().map(|option| option["name"].as_str().unwrap()).collect();
    assert!(edit_options.contains(&"session"), "{edit_options:?}");
    // Every edit mode the core offers is a choice of /edit.
    assert_eq!(put.body[1]["options"][1]["choices"].as_array().unwrap().len(), 7);
}

#[test]
fn register_commands_without_a_token_says_what_to_set() {
    let folder = tempfile::tempdir().unwrap();
    let (output, _, stderr) = run(atelier(folder.path()).arg("register-commands"));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("ATELIER_DISCORD_TOKEN"), "{stderr}");
}

#[test]
fn describe_offers_four_prompts_even_in_demo_mode() {
    let folder = tempfile::tempdir().unwrap();
    let (output, stdout, _) =
        run(atelier(folder.path()).args(["generate", "--prompt", "a red house", "--size", "320x192", "--out", "in"]));
    assert!(output.status.success());
    let image = stdout.split("  ").next().unwrap().to_string();
    let (output, stdout, stderr) = run(atelier(folder.path()).args(["describe", "--image", &image]));
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines.iter().all(|line| line.contains("a wide")), "{stdout}");
    assert!(lines[0].starts_with("1. "), "{stdout}");
}
