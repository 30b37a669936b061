use std::time::Duration;

use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use secrecy::ExposeSecret;

use super::engine::region_in_profile_files;
use super::*;
use crate::engine::EngineKind;

fn raw(pairs: &[(&str, &str)]) -> RawSettings {
    let variables = pairs.iter().map(|(name, value)| (name.to_string(), value.to_string()));
    RawSettings::from_variables(variables).expect("settings read")
}

fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_raw(&raw(pairs))
}

#[test]
fn defaults_are_local_mode() {
    let config = config(&[]).unwrap();
    assert_eq!(config.bind, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8080/");
    assert_eq!(config.store, StoreLocation::Folder(PathBuf::from("./atelier-data")));
    assert_eq!(config.engine, EngineChoice::Auto);
    assert!(config.discord.is_none());
    assert!(config.oidc.is_none());
    assert_eq!(config.local_sign_in(), LocalSignIn::Allowed);
}

#[test]
fn store_locations_parse() {
    let s3 = config(&[("ATELIER_STORE", "s3://atelier-images/prod/")]).unwrap();
    assert_eq!(s3.store, StoreLocation::S3 { bucket: "atelier-images".into(), prefix: Some("prod".into()) });
    let bare = config(&[("ATELIER_STORE", "s3://atelier-images")]).unwrap();
    assert_eq!(bare.store, StoreLocation::S3 { bucket: "atelier-images".into(), prefix: None });
}

#[test]
fn an_unparsable_store_names_the_variable_and_the_fix() {
    let error = config(&[("ATELIER_STORE", "ftp://somewhere")]).unwrap_err();
    assert_eq!(error.variable, "ATELIER_STORE");
    let line = error.to_string();
    assert!(line.starts_with("ATELIER_STORE=ftp://somewhere: is not a store location"), "{line}");
    assert!(line.contains("file://PATH"), "{line}");
    assert!(!line.contains('\n'));

    let bucket = config(&[("ATELIER_STORE", "s3://No_Such")]).unwrap_err();
    assert!(bucket.to_string().contains("not a valid S3 bucket name"), "{bucket}");
}

#[test]
fn a_bad_bind_or_engine_is_refused() {
    let bind = config(&[("ATELIER_BIND", "8080")]).unwrap_err();
    assert_eq!(bind.variable, "ATELIER_BIND");
    let engine = config(&[("ATELIER_ENGINE", "openai")]).unwrap_err();
    assert_eq!(engine.variable, "ATELIER_ENGINE");
    assert!(engine.to_string().contains("bedrock, demo or auto"));
    let localhost = config(&[("ATELIER_BIND", "localhost:9000")]).unwrap();
    assert_eq!(localhost.bind, "127.0.0.1:9000".parse().unwrap());
}

#[test]
fn local_sign_in_is_refused_off_loopback() {
    let open = config(&[("ATELIER_BIND", "0.0.0.0:8080")]).unwrap();
    assert!(matches!(open.local_sign_in(), LocalSignIn::RefusedOffLoopback(_)));
    assert_eq!(open.public_url.as_str(), "http://localhost:8080/");
    let with_oidc = config(&[
        ("ATELIER_BIND", "0.0.0.0:8080"),
        ("ATELIER_OIDC_ISSUER", "https://issuer.example/pool"),
        ("ATELIER_OIDC_CLIENT_ID", "client"),
        ("ATELIER_SESSION_SECRET", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    ])
    .unwrap();
    assert_eq!(with_oidc.local_sign_in(), LocalSignIn::NotNeeded);
}

#[test]
fn sign_in_needs_a_session_secret_long_enough_to_sign_cookies() {
    let base = [("ATELIER_OIDC_ISSUER", "https://issuer.example/pool"), ("ATELIER_OIDC_CLIENT_ID", "client")];
    let missing = config(&base).unwrap_err();
    assert_eq!(missing.variable, "ATELIER_SESSION_SECRET");
    assert!(missing.to_string().contains("openssl rand -hex 32"), "{missing}");
    let short = [base[0], base[1], ("ATELIER_SESSION_SECRET", "abcd")];
    assert!(config(&short).unwrap_err().to_string().contains("shorter than 64"));
    let not_random = "ab".repeat(32);
    let wrong = [base[0], base[1], ("ATELIER_SESSION_SECRET", not_random.as_str())];
    let error = config(&wrong).unwrap_err();
    assert!(error.to_string().contains("too few characters") && !error.to_string().contains("abab"), "{error}");
}

#[test]
fn half_an_oidc_setting_is_refused() {
    let error = config(&[("ATELIER_OIDC_ISSUER", "https://issuer.example")]).unwrap_err();
    assert_eq!(error.variable, "ATELIER_OIDC_ISSUER");
    assert!(error.to_string().contains("ATELIER_OIDC_CLIENT_ID"));
}

#[test]
fn discord_settings_parse_and_secrets_never_print() {
    let config = config(&[
        ("ATELIER_DISCORD_TOKEN", "very-secret-token"),
        ("ATELIER_DISCORD_APPLICATION_ID", "123456789012345678"),
        ("ATELIER_DISCORD_API_URL", "http://127.0.0.1:3000"),
        ("ATELIER_DISCORD_GATEWAY_URL", "ws://127.0.0.1:3000/ws"),
    ])
    .unwrap();
    let discord = config.discord.as_ref().unwrap();
    assert_eq!(discord.application_id, Some(123_456_789_012_345_678));
    assert_eq!(discord.token.expose_secret(), "very-secret-token");
    let printed = format!("{config:?} {:?}", config.describe());
    assert!(!printed.contains("very-secret-token"), "{printed}");

    let bad_id = Config::from_raw(&raw(&[("ATELIER_DISCORD_TOKEN", "t"), ("ATELIER_DISCORD_APPLICATION_ID", "abc")]))
        .unwrap_err();
    assert_eq!(bad_id.variable, "ATELIER_DISCORD_APPLICATION_ID");
    let orphan = Config::from_raw(&raw(&[("ATELIER_DISCORD_API_URL", "http://127.0.0.1:1")])).unwrap_err();
    assert!(orphan.to_string().contains("ATELIER_DISCORD_TOKEN"));
}

#[test]
fn misspelt_variables_are_pointed_out() {
    let settings = raw(&[("ATELIER_STOR", "file://x"), ("ATELIER_TOTALLY_ELSE", "1")]);
    let unknown = settings.unknown_variables();
    assert!(unknown.contains(&("ATELIER_STOR".into(), Some("ATELIER_STORE"))), "{unknown:?}");
    assert!(unknown.contains(&("ATELIER_TOTALLY_ELSE".into(), None)), "{unknown:?}");
}

#[test]
fn the_settings_file_is_read_and_the_environment_wins() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("atelier.toml");
    std::fs::write(&file, "store = \"s3://from-file\"\nbind = \"127.0.0.1:9999\"\ndiscord_application_id = 42\n")
        .unwrap();
    let path = file.to_str().unwrap();
    let config = config(&[("ATELIER_CONFIG", path), ("ATELIER_BIND", "127.0.0.1:7777")]).unwrap();
    assert_eq!(config.store, StoreLocation::S3 { bucket: "from-file".into(), prefix: None });
    assert_eq!(config.bind, "127.0.0.1:7777".parse().unwrap());

    std::fs::write(&file, "stor = \"s3://from-file\"\n").unwrap();
    let typo = RawSettings::from_variables([("ATELIER_CONFIG".to_string(), path.to_string())]).unwrap_err();
    assert!(typo.to_string().contains("did you mean `store`?"), "{typo}");

    let missing =
        RawSettings::from_variables([("ATELIER_CONFIG".to_string(), "/no/such/atelier.toml".to_string())]).unwrap_err();
    assert_eq!(missing.variable, "ATELIER_CONFIG");
}

#[test]
fn auto_engine_follows_the_aws_environment() {
    let nothing = AwsEnvironment::default();
    assert_eq!(resolve_engine(EngineChoice::Auto, &nothing), EngineKind::Demo);
    let region_only = AwsEnvironment { region: Some("us-east-1".into()), credentials_source: None };
    assert_eq!(resolve_engine(EngineChoice::Auto, &region_only), EngineKind::Demo);
    let complete =
        AwsEnvironment { region: Some("us-east-1".into()), credentials_source: Some("environment variables") };
    assert_eq!(resolve_engine(EngineChoice::Auto, &complete), EngineKind::Bedrock);
    assert_eq!(resolve_engine(EngineChoice::Demo, &complete), EngineKind::Demo);
}

#[test]
fn profile_regions_are_found() {
    let text = "[default]\nregion = eu-west-1\n[profile other]\nregion = us-west-2\n";
    let files = EnvConfigFiles::builder().with_contents(EnvConfigFileKind::Config, text).build();
    assert_eq!(region_in_profile_files(&files).as_deref(), Some("eu-west-1"));
}

#[test]
fn the_spool_has_defaults_and_a_bad_limit_names_the_variable() {
    let defaults = config(&[]).unwrap();
    assert_eq!(defaults.spool_dir, PathBuf::from("./atelier-spool"));
    assert_eq!(defaults.spool_max_bytes, 1 << 30);
    let set = config(&[("ATELIER_SPOOL_DIR", "/var/spool/atelier"), ("ATELIER_SPOOL_MAX_BYTES", "5000")]).unwrap();
    assert_eq!((set.spool_dir, set.spool_max_bytes), (PathBuf::from("/var/spool/atelier"), 5000));
    for bad in ["0", "-1", "1GB", "lots"] {
        let error = config(&[("ATELIER_SPOOL_MAX_BYTES", bad)]).unwrap_err();
        assert_eq!(error.variable, "ATELIER_SPOOL_MAX_BYTES");
        assert!(error.to_string().contains("is not a whole number of bytes"), "{error}");
    }
}

#[test]
fn model_timeouts_have_defaults_and_a_bad_value_names_the_variable() {
    let defaults = config(&[]).unwrap().bedrock.timeouts;
    assert_eq!(defaults.attempt, Duration::from_secs(90));
    assert_eq!(defaults.operation(), Duration::from_secs(180));
    assert_eq!(defaults.chat_idle, Duration::from_secs(30));
    assert_eq!(defaults.text_attempt(), Duration::from_secs(45), "text calls are capped");
    let set = config(&[("ATELIER_MODEL_TIMEOUT_SECONDS", "2"), ("ATELIER_CHAT_IDLE_TIMEOUT_SECONDS", "1")]).unwrap();
    assert_eq!(set.bedrock.timeouts.attempt, Duration::from_secs(2));
    assert_eq!(set.bedrock.timeouts.chat_start(), Duration::from_secs(2));
    assert_eq!(set.bedrock.timeouts.text_operation(), Duration::from_secs(4));
    for variable in ["ATELIER_MODEL_TIMEOUT_SECONDS", "ATELIER_CHAT_IDLE_TIMEOUT_SECONDS"] {
        for bad in ["0", "-5", "1.5", "3601", "a minute"] {
            let error = config(&[(variable, bad)]).unwrap_err();
            assert_eq!(error.variable, variable);
            assert!(error.to_string().contains("is not a whole number of seconds from 1 to 3600"), "{error}");
        }
    }
}

#[test]
fn metrics_are_off_unless_an_address_other_than_the_web_apps_is_given() {
    assert_eq!(config(&[]).unwrap().metrics_address, None);
    let set = config(&[("ATELIER_BIND", "0.0.0.0:8080"), ("ATELIER_METRICS_ADDRESS", "0.0.0.0:9090")]).unwrap();
    assert_eq!(set.metrics_address, Some("0.0.0.0:9090".parse().unwrap()));
    let local = config(&[("ATELIER_METRICS_ADDRESS", "localhost:9464")]).unwrap();
    assert_eq!(local.metrics_address, Some("127.0.0.1:9464".parse().unwrap()));
    let error = config(&[("ATELIER_METRICS_ADDRESS", "metrics.local")]).unwrap_err();
    assert_eq!(error.variable, "ATELIER_METRICS_ADDRESS");
    assert!(error.to_string().contains("is not an address and port"), "{error}");
    // The web app's own port would put the metrics on the public path.
    for same in ["127.0.0.1:8080", "0.0.0.0:8080"] {
        let error = config(&[("ATELIER_METRICS_ADDRESS", same)]).unwrap_err();
        assert_eq!(error.variable, "ATELIER_METRICS_ADDRESS");
        assert!(error.to_string().contains("is the web app's own port"), "{error}");
    }
}

#[test]
fn logs_are_text_unless_json_is_asked_for() {
    assert_eq!(config(&[]).unwrap().log_format, LogFormat::Text);
    assert_eq!(config(&[("ATELIER_LOG_FORMAT", "JSON")]).unwrap().log_format, LogFormat::Json);
    assert_eq!(LogFormat::from_raw(&raw(&[("ATELIER_LOG_FORMAT", "text")])), Ok(LogFormat::Text));
    let error = config(&[("ATELIER_LOG_FORMAT", "yaml")]).unwrap_err();
    assert_eq!(error.to_string(), "ATELIER_LOG_FORMAT=yaml: is not a log format; use text or json");
}

#[test]
fn a_cloudfront_distribution_is_named_by_its_id_or_not_at_all() {
    assert_eq!(config(&[]).unwrap().cloudfront_distribution_id, None, "no CDN to tell in local mode");
    let named = config(&[("ATELIER_CLOUDFRONT_DISTRIBUTION_ID", " E2QWRUHAPOMQZL ")]).unwrap();
    assert_eq!(named.cloudfront_distribution_id.as_deref(), Some("E2QWRUHAPOMQZL"));
    assert!(named.describe().contains(&("ATELIER_CLOUDFRONT_DISTRIBUTION_ID", "E2QWRUHAPOMQZL".to_string())));

    for (value, problem) in [
        ("d111111abcdef8.cloudfront.net", "domain name, not its id"),
        ("arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL", "ARN, not its id"),
        ("e2qwruhapomqzl", "not a CloudFront distribution id"),
    ] {
        let error = config(&[("ATELIER_CLOUDFRONT_DISTRIBUTION_ID", value)]).unwrap_err();
        assert_eq!(error.variable, "ATELIER_CLOUDFRONT_DISTRIBUTION_ID");
        let line = error.to_string();
        assert!(line.contains(problem), "{line}");
        assert!(line.contains("such as E2QWRUHAPOMQZL"), "{line}");
    }
}
