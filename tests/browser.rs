//! The web app in a real browser: Debian's Chromium, driven by playwright-core from the Node
//! scripts in tests/browser/, against `atelier serve` with the OpenID Connect provider, moto
//! (S3) and the Bedrock stand-in. Screenshots of every step are kept in
//! target/browser-screenshots/<flow>/.

use std::sync::Arc;
use std::time::Duration;

use atelier_shared::adapters::{Accounts, NoDirectory};
use base64::Engine as _;
use image::GenericImageView as _;

use crate::support::bedrock::{Behaviour, Operation};
use crate::support::browser::BrowserStack;

/// A Discord user id, as Discord's snowflakes look.
const DISCORD_ID: u64 = 1_234_567_890_123_456_789;

#[tokio::test]
async fn signs_in_generates_finds_the_image_in_the_gallery_and_signs_out() {
    let stack = BrowserStack::start().await;
    let prompt = "a lighthouse in a storm, oil painting";
    stack.run_flow("generate", &[("SUBJECT", "alice"), ("PROMPT", prompt)]).await;

    // The image was drawn by the (stand-in) model, from the prompt typed in the page.
    let drawn = stack.bedrock.requests().into_iter().filter(|call| call.operation == Operation::InvokeModel).count();
    assert_eq!(
        drawn, 2,
        "one image model call for each image: the one from the home page, and the one from another tab"
    );
    assert!(
        stack.bedrock.requests().iter().any(|call| call.body.to_string().contains(prompt)),
        "no model call carried the prompt"
    );
}

#[tokio::test]
async fn paints_a_mask_inpaints_and_chains_a_second_edit() {
    let stack = BrowserStack::start().await;
    stack
        .run_flow(
            "edit",
            &[
                ("SUBJECT", "bruno"),
                ("PROMPT", "a quiet harbour at dawn"),
                ("EDIT_PROMPT", "a red sailboat"),
                ("SECOND_EDIT_PROMPT", "a white gull"),
            ],
        )
        .await;

    // Both edits went to the inpainting tool with the painted mask, at the image's own size.
    let inpaints: Vec<_> = stack
        .bedrock
        .requests()
        .into_iter()
        .filter(|call| call.operation == Operation::InvokeModel && call.model_id.contains("inpaint"))
        .collect();
    assert_eq!(inpaints.len(), 2, "two inpaint calls: the edit and the chained edit");
    for (index, call) in inpaints.iter().enumerate() {
        let decode = |field: &str| {
            let text = call.body[field].as_str().unwrap_or_else(|| panic!("inpaint call {index} has no {field}"));
            let bytes = base64::engine::general_purpose::STANDARD.decode(text).unwrap();
            image::load_from_memory(&bytes).unwrap()
        };
        let (source, mask) = (decode("image"), decode("mask"));
        assert_eq!(mask.dimensions(), source.dimensions(), "inpaint call {index}: the mask is not at the image's size");
        // White marks the painted region (Stability's convention and ours): the strokes, which
        // cover some of the picture's middle, never its corner nor half of it.
        let luma = mask.to_luma8();
        let painted = luma.pixels().filter(|pixel| pixel.0[0] > 127).count();
        let total = luma.pixels().count();
        assert!(
            painted > 0 && painted < total / 2,
            "inpaint call {index}: {painted} of {total} mask pixels are painted"
        );
        assert_eq!(luma.get_pixel(0, 0).0[0], 0, "inpaint call {index}: the unpainted corner is not black");
    }
    assert_eq!(inpaints[0].body["prompt"], "a red sailboat");
    assert_eq!(inpaints[1].body["prompt"], "a white gull");
}

#[tokio::test]
async fn a_first_time_visitor_saves_settings_and_they_are_kept_and_used() {
    let stack = BrowserStack::start().await;
    stack
        .run_flow(
            "settings",
            &[("SUBJECT", "emil"), ("ASPECT", "16:9"), ("NEGATIVE", "fog"), ("PROMPT", "a quiet harbour at dawn")],
        )
        .await;

    // The home page's form names no shape: the model was asked for the default one.
    let call = stack.bedrock.requests().into_iter().find(|call| call.operation == Operation::InvokeModel).unwrap();
    assert_eq!(call.body["aspect_ratio"], "16:9", "{:#}", call.body);
    assert_eq!(call.body["negative_prompt"], "fog", "{:#}", call.body);
}

#[tokio::test]
async fn chats_with_an_answer_that_streams_in() {
    let stack = BrowserStack::start().await;
    // Every event of the streamed answer comes 150 ms after the one before.
    stack.bedrock.script(Behaviour::Delay(Duration::from_millis(150)));
    stack
        .run_flow(
            "chat",
            &[
                ("SUBJECT", "chiara"),
                ("MESSAGE", "Suggest a title for a painting of a quiet harbour at dawn with fishing boats"),
            ],
        )
        .await;
    assert!(stack.bedrock.calls_to(Operation::ConverseStream) >= 1, "the answer did not come from ConverseStream");
}

#[tokio::test]
async fn links_a_discord_account_from_a_token_made_by_the_core() {
    let stack = BrowserStack::start().await;
    let public_url = reqwest::Url::parse(&stack.base_url).unwrap();
    let accounts = Accounts::new(stack.store().await, Arc::new(NoDirectory), &public_url);
    let token = accounts.issue_link(DISCORD_ID).await.unwrap();
    stack
        .run_flow(
            "link",
            &[("SUBJECT", "dara"), ("LINK_URL", token.url().as_str()), ("DISCORD_ID", &DISCORD_ID.to_string())],
        )
        .await;

    let link = accounts.link_for_discord(DISCORD_ID).await.unwrap().expect("the Discord account is not linked");
    assert_eq!(link.subject, "dara");

    // Signed in again later, the account page undoes the link, then deletes everything of hers.
    stack.run_flow("unlink", &[("SUBJECT", "dara"), ("DISCORD_ID", &DISCORD_ID.to_string())]).await;
    assert!(accounts.link_for_discord(DISCORD_ID).await.unwrap().is_none(), "the Discord account is still linked");
    let left = stack.store().await.list("users/web-dara/", None, 10).await.unwrap();
    assert!(left.is_empty(), "her data is still in the store: {left:?}");
}

#[tokio::test]
async fn a_new_visitor_checks_a_prompt_generates_from_the_improved_one_and_deletes_the_image() {
    let stack = BrowserStack::start().await;
    // The critic's answer, through its tool as Claude gives it.
    stack.bedrock.script(Behaviour::ToolUse(serde_json::json!({
        "strengths": ["a clear subject"],
        "improvements": ["say the light and the style"],
        "suggestions": ["add the time of day"],
        "improved_prompts": [
            {"family": "stability", "prompt": "a tabby cat on a sunlit windowsill, soft morning light, photograph"},
            {"family": "amazon", "prompt": "photograph of a tabby cat resting on a windowsill in morning light"}
        ],
        "negative_prompt_suggestions": ["blurry"],
        "explanation": "Light and style steer the model."
    })));
    stack.run_flow("forms", &[("SUBJECT", "erin"), ("PROMPT", "a cat on a windowsill")]).await;
    // The checker asked a model, and the improved prompt was drawn.
    let calls = stack.bedrock.requests();
    assert!(calls.iter().any(|call| call.operation == Operation::Converse), "the critique asked no model");
    let drawn: Vec<_> = calls.iter().filter(|call| call.operation == Operation::InvokeModel).collect();
    assert_eq!(drawn.len(), 1);
    assert!(drawn[0].body.to_string().contains("sunlit windowsill"), "the improved prompt was not the one drawn");
}

/// How long the image model takes here: longer than the proxy lets any request wait.
const SLOW_MODEL: Duration = Duration::from_secs(65);
/// CloudFront's default origin read timeout, which the proxy in front of the app enforces.
const CLOUDFRONT_CUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn jobs_outlast_a_proxy_that_cuts_requests_at_60_s_and_a_waiting_one_is_cancelled() {
    // One job runs at a time, so Bob's waits behind Alice's.
    let stack = BrowserStack::start_with(&[("ATELIER_MAX_RUNNING_JOBS", "1")], Some(CLOUDFRONT_CUT)).await;
    stack.bedrock.script(Behaviour::SlowImages(SLOW_MODEL));
    let wait = (SLOW_MODEL + Duration::from_secs(60)).as_millis().to_string();
    stack
        .run_flow(
            "live",
            &[
                ("PROMPT", "a lighthouse at dusk, slowly drawn"),
                ("SECOND_PROMPT", "a harbour that is never drawn"),
                ("RESULT_WAIT_MS", &wait),
            ],
        )
        .await;

    let cuts = stack.proxy.as_ref().unwrap().cuts();
    // No request waited on the model: each was answered before the proxy's limit...
    assert!(cuts.unanswered.is_empty(), "requests the proxy had to cut: {:?}", cuts.unanswered);
    // ...though the job took longer than it, and the page's event stream was cut at the
    // limit and opened again.
    assert!(cuts.streams_cut.iter().any(|cut| cut.contains("/events")), "{cuts:#?}");
    assert!(cuts.passed.iter().filter(|request| request.ends_with("/events")).count() >= 2, "{cuts:#?}");

    // One image was drawn: Alice's. Bob's job never reached the model and cost him nothing.
    assert_eq!(stack.bedrock.calls_to(Operation::InvokeModel), 1, "only Alice's job was drawn");
    let store = stack.store().await;
    let mut charged = Vec::new();
    for key in store.list("users/", None, 1_000).await.unwrap() {
        if key.as_str().ends_with("/usage.json") {
            let ledger: serde_json::Value = serde_json::from_slice(&store.get(&key).await.unwrap()).unwrap();
            assert_eq!(ledger["jobs"], serde_json::json!([]), "a job is left in {key:?}: {ledger}");
            charged.push(ledger["images"].as_u64().unwrap());
        }
    }
    charged.sort_unstable();
    assert_eq!(charged, [0, 1], "Alice is charged one image, Bob none");
}
