use super::*;

fn config(issuer: &str) -> OidcConfig {
    OidcConfig {
        issuer: Url::parse(issuer).unwrap(),
        client_id: "atelier-web".into(),
        client_secret: None,
        cognito_user_pool_id: None,
        session_secret: secrecy::SecretBox::new(vec![7; 32].into_boxed_slice()),
    }
}

#[test]
fn the_callback_is_under_the_public_url() {
    let plain =
        OidcSignIn::new(&config("https://idp.example"), &Url::parse("https://atelier.example/").unwrap()).unwrap();
    assert_eq!(plain.redirect_url().as_str(), "https://atelier.example/auth/callback");
    let prefixed =
        OidcSignIn::new(&config("https://idp.example"), &Url::parse("https://example.org/atelier").unwrap()).unwrap();
    assert_eq!(prefixed.redirect_url().as_str(), "https://example.org/atelier/auth/callback");
}

#[test]
fn only_local_paths_are_returned_to() {
    assert_eq!(safe_return_path("/gallery?page=2"), "/gallery?page=2");
    for hostile in ["https://evil.example/", "//evil.example/", "/\\evil.example", "gallery", "", "/a\nb"] {
        assert_eq!(safe_return_path(hostile), "/", "{hostile:?}");
    }
}

#[test]
fn cognito_logout_goes_to_the_managed_login_domain() {
    let authorize = Url::parse("https://atelier.auth.eu-west-1.amazoncognito.com/oauth2/authorize").unwrap();
    let url = cognito_logout_url(&authorize, "client123", &Url::parse("https://atelier.example/").unwrap());
    assert_eq!(
        url.as_str(),
        "https://atelier.auth.eu-west-1.amazoncognito.com/logout?client_id=client123&logout_uri=https%3A%2F%2Fatelier.example%2F"
    );
    assert!(is_cognito_issuer(&Url::parse("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc").unwrap()));
    assert!(!is_cognito_issuer(&Url::parse("https://idp.example/").unwrap()));
}

#[test]
fn a_pending_sign_in_round_trips_and_keeps_its_secrets_out_of_logs() {
    let pending = PendingSignIn {
        csrf_state: "state-secret".into(),
        nonce: "nonce-secret".into(),
        pkce_verifier: "verifier-secret".into(),
        return_to: "/gallery".into(),
    };
    let json = serde_json::to_string(&pending).unwrap();
    let back: PendingSignIn = serde_json::from_str(&json).unwrap();
    assert_eq!(back.return_to(), "/gallery");
    assert_eq!(back.nonce, "nonce-secret");
    let shown = format!("{pending:?}");
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn states_compare_whole() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
}
