//! The Discord bot end to end: the real serenity + poise client inside `atelier serve`,
//! connected to the Discord stand-in's gateway and REST API, drawing through the Bedrock
//! stand-in (or the demo engine with the gallery on moto). Tests act as Discord users do:
//! they dispatch slash commands and button presses and read what Discord would show.

use std::time::Duration;

use atelier_shared::adapters::Accounts;
use atelier_shared::adapters::FolderStore;
use atelier_shared::adapters::NoDirectory;
use atelier_shared::gallery::Owner;
use atelier_shared::oidc::SignedInUser;
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::support::bedrock::{BedrockStandIn, Behaviour, Operation};
use crate::support::discord::{
    APPLICATION_ID, CHANNEL_ID, DiscordStandIn, MODERATION_CHANNEL_ID as MODERATION_CHANNEL,
};

const PERSON: u64 = 3_000_000_000_000_000_001;
const SOMEONE_ELSE: u64 = 3_000_000_000_000_000_002;

/// The bot running inside Atelier, with its stand-ins.
pub(crate) struct Bot {
    pub(crate) discord: DiscordStandIn,
    pub(crate) bedrock: BedrockStandIn,
    pub(crate) app: TestApp,
}

impl Bot {
    /// Atelier on Bedrock (the stand-in) with the bot connected to the Discord stand-in.
    pub(crate) async fn start(settings: &[(&str, &str)]) -> Self {
        let mut variables = vec![("ATELIER_PUBLIC_URL", "https://atelier.example")];
        variables.extend_from_slice(settings);
        Self::start_with(&variables).await
    }

    /// The bot with web sign-in through `provider` (the app's own address as its public URL,
    /// so the provider's callback reaches it).
    pub(crate) async fn start_signed_in(provider: &crate::support::oidc::OidcProvider) -> Self {
        let issuer = provider.issuer();
        Self::start_with(&[
            ("ATELIER_OIDC_ISSUER", issuer.as_str()),
            ("ATELIER_OIDC_CLIENT_ID", "atelier-web"),
            ("ATELIER_OIDC_CLIENT_SECRET", "atelier-secret"),
            ("ATELIER_SESSION_SECRET", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        ])
        .await
    }

    async fn start_with(settings: &[(&str, &str)]) -> Self {
        let discord = DiscordStandIn::start().await;
        let bedrock = BedrockStandIn::start().await;
        let sdk_config = bedrock.sdk_config().await;
        let (api, gateway) = (discord.url(), discord.gateway_url());
        let mut variables: Vec<(&str, &str)> = vec![
            ("ATELIER_ENGINE", "bedrock"),
            ("ATELIER_DISCORD_TOKEN", "stand-in-token"),
            ("ATELIER_DISCORD_APPLICATION_ID", APPLICATION_ID),
            ("ATELIER_DISCORD_API_URL", &api),
            ("ATELIER_DISCORD_GATEWAY_URL", &gateway),
        ];
        variables.extend_from_slice(settings);
        let app = TestApp::spawn_with_aws(&variables, sdk_config).await;
        discord.wait_until_ready().await;
        Self { discord, bedrock, app }
    }

    /// Sends a slash command as `user`; returns the interaction id.
    pub(crate) async fn command(&self, user: u64, name: &str, options: Value, attachments: &[Value]) -> String {
        let interaction =
            self.discord.slash_command(&DiscordStandIn::user(user, &format!("user{user}")), name, options, attachments);
        let id = interaction["id"].as_str().unwrap().to_string();
        self.discord.dispatch_interaction(interaction).await;
        id
    }

    /// Presses a button on `message` as `user`; returns the interaction id.
    pub(crate) async fn press(&self, user: u64, custom_id: &str, message: &Value) -> String {
        let interaction =
            self.discord.button_press(&DiscordStandIn::user(user, &format!("user{user}")), custom_id, message);
        let id = interaction["id"].as_str().unwrap().to_string();
        self.discord.dispatch_interaction(interaction).await;
        id
    }

    /// Waits until the interaction's original response shows an image, and returns it.
    pub(crate) async fn result_of(&self, interaction: &str) -> Value {
        self.eventually(&format!("a result for interaction {interaction}"), || {
            self.discord.interaction_original(interaction).filter(shows_an_image)
        })
        .await
    }

    /// Waits for the ephemeral follow-up (or ephemeral reply) an interaction got; a private
    /// deferral's "thinking" message is not an answer yet.
    pub(crate) async fn private_answer(&self, interaction: &str) -> Value {
        self.eventually(&format!("a private answer to interaction {interaction}"), || {
            let followup = self.discord.interaction_followups(interaction).into_iter().find(is_ephemeral);
            followup.or_else(|| {
                self.discord
                    .interaction_original(interaction)
                    .filter(|message| is_ephemeral(message) && !is_loading(message))
            })
        })
        .await
    }

    /// Polls `probe` like the free `eventually`; on a timeout the panic lists what Discord saw.
    pub(crate) async fn eventually<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(found) = probe() {
                return found;
            }
            if tokio::time::Instant::now() >= deadline {
                let seen: Vec<String> = self
                    .discord
                    .requests()
                    .iter()
                    .map(|request| {
                        format!("{} {} -> {} {}", request.method, request.path, request.status, request.body)
                    })
                    .collect();
                panic!("timed out waiting for {what}; Discord saw:\n{}", seen.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends `/server` with `options` as `user` and waits for its answer (the interaction's
    /// callback once it carries text).
    pub(crate) async fn server_command(&self, user: u64, options: Value) -> Value {
        let interaction = self.command(user, "server", options, &[]).await;
        self.eventually("the /server answer", || {
            self.discord.interaction_callback(&interaction).filter(|callback| callback["data"]["content"].is_string())
        })
        .await
    }

    pub(crate) fn image_calls(&self) -> usize {
        self.bedrock.calls_to(Operation::InvokeModel)
    }
}

/// Whether a message shows an uploaded image (in an embed, which is how results show them).
pub(crate) fn shows_an_image(message: &Value) -> bool {
    message["embeds"][0]["image"]["url"].as_str().is_some_and(|url| url.contains("/attachments/"))
}

pub(crate) fn is_ephemeral(message: &Value) -> bool {
    message["flags"].as_u64().unwrap_or(0) & 64 != 0
}

/// Whether a message is a deferral's "thinking" placeholder (the LOADING flag).
pub(crate) fn is_loading(message: &Value) -> bool {
    message["flags"].as_u64().unwrap_or(0) & 128 != 0
}

/// Polls `probe` until it yields something, for up to 30 seconds.
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The custom ids of a message's buttons, in order.
pub(crate) fn button_ids(message: &Value) -> Vec<String> {
    message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|button| button["custom_id"].as_str().map(String::from))
        .collect()
}

pub(crate) fn button(message: &Value, code: &str) -> String {
    let prefix = format!("atelier:{code}:");
    button_ids(message)
        .into_iter()
        .find(|id| id.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {code} button on {message:#}"))
}

pub(crate) fn option(name: &str, value: impl Into<Value>) -> Value {
    json!({ "name": name, "type": 3, "value": value.into() })
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

#[tokio::test]
async fn imagine_is_acknowledged_then_answered_with_the_image_its_details_and_buttons() {
    let bot = Bot::start(&[]).await;
    let interaction = bot
        .command(
            PERSON,
            "imagine",
            json!([option("prompt", "a lighthouse in a storm --ar 16:9 --seed 42 --no people")]),
            &[],
        )
        .await;
    let result = bot.result_of(&interaction).await;

    // Acknowledged first (type 5), then the result replaced the "thinking" message.
    assert_eq!(bot.discord.interaction_callback(&interaction).unwrap()["type"], 5);
    let requests = bot.discord.requests();
    let callback_at = requests.iter().position(|request| request.path.ends_with("/callback")).unwrap();
    let result_at = requests
        .iter()
        .rposition(|request| request.method == "PATCH" && request.path.ends_with("/messages/@original"))
        .unwrap();
    assert!(callback_at < result_at);
    let upload = &requests[result_at];
    assert_eq!(upload.files.len(), 1);
    assert!(upload.files[0].bytes.starts_with(b"\x89PNG"), "the upload is the PNG the model made");

    // The model got the inline parameters as real fields.
    let call = bot.bedrock.requests().into_iter().find(|call| call.operation == Operation::InvokeModel).unwrap();
    assert_eq!(call.body["seed"], 42);
    assert_eq!(call.body["aspect_ratio"], "16:9");
    assert_eq!(call.body["negative_prompt"], "people");
    assert_eq!(call.body["prompt"], "a lighthouse in a storm");

    let embed = &result["embeds"][0];
    assert_eq!(embed["description"], "a lighthouse in a storm");
    let fields: Vec<(String, String)> = embed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| (field["name"].as_str().unwrap().into(), field["value"].as_str().unwrap().into()))
        .collect();
    assert!(fields.contains(&("Seed".into(), "42".into())), "{fields:?}");
    assert!(embed["url"].as_str().unwrap().starts_with("https://atelier.example/gallery/"));
    let buttons = button_ids(&result);
    for code in ["var", "edit", "zoom", "rmbg", "up", "reroll", "info", "dm", "pub", "del"] {
        assert!(buttons.iter().any(|id| id.starts_with(&format!("atelier:{code}:discord-{PERSON}:"))), "{buttons:?}");
    }
    // Progress was shown in place while the job ran.
    assert!(
        requests.iter().any(|request| request.method == "PATCH"
            && request.body["content"].as_str().is_some_and(|text| text.contains("a lighthouse in a storm"))),
        "no progress edit was shown"
    );
}

/// Communities write in every language and with emoji: each prompt reaches the model, the
/// result's embed and the gallery's record exactly as typed.
#[tokio::test]
async fn imagine_takes_prompts_in_any_language_and_with_emoji() {
    let bot = Bot::start(&[]).await;
    for prompt in ["猫がピアノを弾く", "قطة تعزف على البيانو", "a fox 🦊 in snow"] {
        let interaction = bot.command(PERSON, "imagine", json!([option("prompt", prompt)]), &[]).await;
        let result = bot.result_of(&interaction).await;
        assert_eq!(result["embeds"][0]["description"], prompt, "{result}");
        let call =
            bot.bedrock.requests().into_iter().rev().find(|call| call.operation == Operation::InvokeModel).unwrap();
        assert_eq!(call.body["prompt"], prompt);
        let id = result["embeds"][0]["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
        assert_eq!(stored_record(&bot, &id)["prompt"], prompt);
    }
}

/// The gallery record of an image the bot made for [`PERSON`], read from the store.
fn stored_record(bot: &Bot, id: &str) -> Value {
    let folder = bot.app.data.path().join(format!("store/users/discord-{PERSON}/records"));
    std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.unwrap().path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .find(|record| record["id"] == id)
        .unwrap_or_else(|| panic!("no record of {id} in {}", folder.display()))
}

/// The image id at the end of a button's `custom_id`.
fn target_of(custom_id: &str) -> &str {
    custom_id.rsplit(':').next().unwrap()
}

#[tokio::test]
async fn every_image_of_a_batch_has_its_own_actions() {
    let bot = Bot::start(&[]).await;
    let imagine = bot
        .command(
            PERSON,
            "imagine",
            json!([option("prompt", "four foxes in snow"), option("model", "titan"), {"name": "count", "type": 4, "value": 4}]),
            &[],
        )
        .await;
    let result = bot.result_of(&imagine).await;
    assert_eq!(result["embeds"].as_array().unwrap().len(), 4, "{result:#}");
    let buttons = button_ids(&result);
    // Each image's own row: its id under Variations, Upscale, Edit, More and Delete.
    let images: Vec<String> = result["embeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|embed| embed["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    for image in &images {
        for code in ["var", "up", "edit", "info", "del"] {
            assert!(
                buttons.iter().any(|id| id.starts_with(&format!("atelier:{code}:")) && target_of(id) == image),
                "image {image} has no {code} button: {buttons:?}"
            );
        }
    }

    // The third image's Variations makes a child of the third image, not of the first.
    let third = &images[2];
    let vary_third = buttons.iter().find(|id| id.starts_with("atelier:var:") && target_of(id) == third).unwrap();
    let pressed = bot.press(PERSON, vary_third, &result).await;
    let made = bot.result_of(&pressed).await;
    let child = made["embeds"][0]["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    assert_eq!(stored_record(&bot, &child)["parent"].as_str(), Some(third.as_str()));

    // Its More shows every action for that image, privately.
    let more = buttons.iter().find(|id| id.starts_with("atelier:info:") && target_of(id) == images[3]).unwrap();
    let details = bot.press(SOMEONE_ELSE, more, &result).await;
    let shown = bot.private_answer(&details).await;
    let all = button_ids(&shown);
    for code in ["var", "edit", "zoom", "rmbg", "up", "reroll", "dm", "del"] {
        assert!(
            all.iter().any(|id| id.starts_with(&format!("atelier:{code}:")) && target_of(id) == images[3]),
            "{all:?}"
        );
    }
}

#[tokio::test]
async fn each_button_acts_from_the_gallery_for_whoever_presses_it() {
    let bot = Bot::start(&[]).await;
    let first = bot.command(PERSON, "imagine", json!([option("prompt", "a red fox in snow")]), &[]).await;
    let result = bot.result_of(&first).await;
    let calls_before = bot.image_calls();

    // Variations, Zoom out, Remove background and Upscale each make a new result message.
    for code in ["var", "zoom", "rmbg", "up", "reroll"] {
        let pressed = bot.press(PERSON, &button(&result, code), &result).await;
        let made = bot.result_of(&pressed).await;
        assert!(!button_ids(&made).is_empty(), "{code}: the result has buttons too");
    }
    assert_eq!(bot.image_calls(), calls_before + 5);

    // Details: only the presser sees them.
    let details = bot.press(SOMEONE_ELSE, &button(&result, "info"), &result).await;
    let shown = bot.private_answer(&details).await;
    assert_eq!(shown["embeds"][0]["title"], "Image details");

    // Edit opens a modal; submitting it with a region repaints what the region names.
    let edit = bot.press(PERSON, &button(&result, "edit"), &result).await;
    let modal = bot.eventually("the edit modal", || bot.discord.interaction_callback(&edit)).await;
    assert_eq!(modal["type"], 9);
    let submitted = bot.discord.modal_submit(
        &DiscordStandIn::user(PERSON, "person"),
        modal["data"]["custom_id"].as_str().unwrap(),
        &[("prompt", "a blue fox in snow"), ("mask_prompt", "the fox")],
    );
    let submitted_id = submitted["id"].as_str().unwrap().to_string();
    bot.discord.dispatch_interaction(submitted).await;
    bot.result_of(&submitted_id).await;
    let inpaint =
        bot.bedrock.requests().into_iter().rev().find(|call| call.operation == Operation::InvokeModel).unwrap();
    assert_eq!(inpaint.body["prompt"], "a blue fox in snow", "{:#}", inpaint.body);

    // Send to DM opens a DM channel and sends the image there.
    let dm = bot.press(PERSON, &button(&result, "dm"), &result).await;
    bot.discord.wait_for_request("the DM channel", |request| request.path.ends_with("/users/@me/channels")).await;
    let sent = bot
        .discord
        .wait_for_request("the DM", |request| {
            request.method == "POST"
                && request.path.contains("/channels/")
                && !request.files.is_empty()
                && !request.path.contains(CHANNEL_ID)
        })
        .await;
    assert!(sent.files[0].bytes.starts_with(b"\x89PNG"));
    bot.eventually("the DM confirmation", || {
        bot.discord
            .interaction_original(&dm)
            .filter(|message| message["content"].as_str().is_some_and(|text| text.contains("Sent to your DMs")))
    })
    .await;

    // Delete: refused to someone else, done for the owner, and then the buttons say so.
    let refused = bot.press(SOMEONE_ELSE, &button(&result, "del"), &result).await;
    let answer = bot.private_answer(&refused).await;
    assert!(answer["content"].as_str().unwrap().contains("Only the person who made this image"));
    let deleted = bot.press(PERSON, &button(&result, "del"), &result).await;
    let answer = bot.private_answer(&deleted).await;
    assert!(answer["content"].as_str().unwrap().contains("Deleted"), "{answer:#}");
    let message_id = result["id"].as_str().unwrap().to_string();
    bot.eventually("the result message to be removed", || bot.discord.message(&message_id).is_none().then_some(()))
        .await;

    let calls = bot.image_calls();
    let late = bot.press(PERSON, &button(&result, "var"), &result).await;
    let answer = bot.private_answer(&late).await;
    assert!(answer["content"].as_str().unwrap().contains("no longer in the gallery"), "{answer:#}");
    assert_eq!(bot.image_calls(), calls, "a button for a deleted image costs no model call");
}

/// White marks the region to change: the mask attached to `/edit` reaches the inpainting
/// model with the same half marked (Stability's inpaint takes white as the region too).
#[tokio::test]
async fn edit_with_a_mask_repaints_its_white_side() {
    let bot = Bot::start(&[]).await;
    let picture = bot.discord.attachment("wall.png", "image/png", crate::support::varied_picture(512, 512));
    let mask = bot.discord.attachment("mask.png", "image/png", crate::support::left_half_white_mask(512, 512));
    let edit = bot
        .command(
            PERSON,
            "edit",
            json!([
                {"name": "image", "type": 11, "value": picture["id"]},
                {"name": "mode", "type": 4, "value": 0},
                option("prompt", "ivy on a wall"),
                {"name": "mask", "type": 11, "value": mask["id"]}
            ]),
            &[picture, mask],
        )
        .await;
    bot.result_of(&edit).await;
    let call = bot.bedrock.requests().into_iter().find(|call| call.operation == Operation::InvokeModel).unwrap();
    assert!(call.model_id.contains("inpaint"), "{}", call.model_id);
    use base64::Engine as _;
    let sent = base64::engine::general_purpose::STANDARD.decode(call.body["mask"].as_str().unwrap()).unwrap();
    let sent = image::load_from_memory(&sent).unwrap().to_luma8();
    assert_eq!(sent.get_pixel(10, 256)[0], 255, "the white half is the region the model repaints");
    assert_eq!(sent.get_pixel(500, 256)[0], 0, "the black half is kept");
}

#[tokio::test]
async fn edit_takes_an_attachment_and_bad_attachments_are_refused_without_a_model_call() {
    let bot = Bot::start(&[]).await;
    let picture = bot.discord.attachment("cat.png", "image/png", png(512, 512));
    let edit = bot
        .command(
            PERSON,
            "edit",
            json!([
                {"name": "image", "type": 11, "value": picture["id"]},
                {"name": "mode", "type": 4, "value": 4},
                option("prompt", "a tabby cat wearing a scarf"),
                option("mask_prompt", "the cat")
            ]),
            std::slice::from_ref(&picture),
        )
        .await;
    bot.result_of(&edit).await;
    let call = bot.bedrock.requests().into_iter().find(|call| call.operation == Operation::InvokeModel).unwrap();
    assert_eq!(call.body["search_prompt"], "the cat", "{:#}", call.body);
    assert_eq!(call.body["prompt"], "a tabby cat wearing a scarf");
    let calls = bot.image_calls();

    // Not an image: refused before acknowledging, only to its author.
    let text = bot.discord.attachment("notes.txt", "text/plain", b"hello".to_vec());
    let refused = bot
        .command(
            PERSON,
            "edit",
            json!([{"name": "image", "type": 11, "value": text["id"]}, {"name": "mode", "type": 4, "value": 6}]),
            std::slice::from_ref(&text),
        )
        .await;
    let answer = bot.private_answer(&refused).await;
    assert!(answer["content"].as_str().unwrap().contains("is not an image"), "{answer:#}");

    // A truncated PNG: found when it is read, still answered privately.
    let mut broken = png(256, 256);
    broken.truncate(broken.len() / 2);
    let truncated = bot.discord.attachment("broken.png", "image/png", broken);
    let refused = bot
        .command(
            PERSON,
            "edit",
            json!([{"name": "image", "type": 11, "value": truncated["id"]}, {"name": "mode", "type": 4, "value": 6}]),
            std::slice::from_ref(&truncated),
        )
        .await;
    let answer = bot.private_answer(&refused).await;
    assert!(answer["content"].as_str().unwrap().to_lowercase().contains("image"), "{answer:#}");
    assert!(bot.discord.interaction_original(&refused).is_none(), "the public acknowledgement was removed");

    // Too large: refused from the size Discord reports, before downloading.
    let huge = bot.discord.attachment("huge.png", "image/png", vec![0; 11 * 1024 * 1024]);
    let refused = bot
        .command(
            PERSON,
            "edit",
            json!([{"name": "image", "type": 11, "value": huge["id"]}, {"name": "mode", "type": 4, "value": 6}]),
            std::slice::from_ref(&huge),
        )
        .await;
    let answer = bot.private_answer(&refused).await;
    assert!(answer["content"].as_str().unwrap().contains("MB"), "{answer:#}");
    assert_eq!(bot.image_calls(), calls, "bad attachments cost no model call");
}

#[tokio::test]
async fn bad_options_get_a_private_answer_and_cost_no_model_call_and_no_quota() {
    let bot = Bot::start(&[("ATELIER_DAILY_IMAGE_QUOTA", "10")]).await;
    let cases = [
        (json!([option("prompt", format!("{} --model titan", "a very long prompt ".repeat(40)))]), "512"),
        (json!([option("prompt", "a cat"), option("model", "dall-e")]), "no model `dall-e`"),
        (json!([option("prompt", "a cat"), {"name": "seed", "type": 4, "value": 5_000_000_000_i64}]), "not a seed"),
        (json!([option("prompt", "a cat --ar 16x9")]), "16x9"),
    ];
    for (options, expected) in cases {
        let interaction = bot.command(PERSON, "imagine", options, &[]).await;
        let answer = bot.private_answer(&interaction).await;
        let text = answer["content"].as_str().unwrap();
        assert!(text.contains(expected), "expected {expected:?} in {text:?}");
        assert_eq!(bot.discord.interaction_callback(&interaction).unwrap()["type"], 4, "answered, not deferred");
    }
    assert_eq!(bot.bedrock.requests().len(), 0, "no model was called, not even the safety classifier");
    let me = bot.command(PERSON, "me", json!([]), &[]).await;
    let answer = bot.private_answer(&me).await;
    assert!(answer["embeds"][0]["fields"][0]["value"].as_str().unwrap().starts_with("10 of 10"), "{answer:#}");
}

#[tokio::test]
async fn a_blocked_prompt_is_answered_privately_logged_for_moderators_and_can_be_appealed() {
    let bot = Bot::start(&[("ATELIER_DISCORD_MODERATION_CHANNEL", MODERATION_CHANNEL)]).await;
    bot.bedrock
        .script(Behaviour::ToolUse(json!({"verdict": "blocked", "category": "violence", "reason": "realistic gore"})));
    let interaction = bot.command(PERSON, "imagine", json!([option("prompt", "a zombie film poster")]), &[]).await;
    let refusal = bot.private_answer(&interaction).await;
    assert!(refusal["content"].as_str().unwrap().contains("realistic gore"), "{refusal:#}");
    bot.eventually("the public acknowledgement to go", || {
        bot.discord.interaction_original(&interaction).is_none().then_some(())
    })
    .await;
    assert_eq!(bot.image_calls(), 0);
    assert!(
        bot.discord.channel_messages(CHANNEL_ID).iter().all(|message| !message.to_string().contains("zombie")),
        "nothing refused is posted publicly"
    );
    let logged =
        bot.eventually("the moderation log line", || bot.discord.channel_messages(MODERATION_CHANNEL).pop()).await;
    assert!(logged["content"].as_str().unwrap().contains("realistic gore"));

    // The appeal goes to the stronger model, which (unscripted) allows it, and the image is made.
    let appeal = bot.press(PERSON, &button(&refusal, "appeal"), &refusal).await;
    bot.result_of(&appeal).await;
    assert_eq!(bot.image_calls(), 1);
}

#[tokio::test]
async fn check_and_describe_offer_buttons_that_imagine_their_suggestions() {
    let bot = Bot::start(&[]).await;
    bot.bedrock.script(Behaviour::ToolUse(json!({
        "strengths": ["a clear subject"],
        "improvements": ["no lighting"],
        "suggestions": ["say when it is"],
        "improved_prompts": [
            {"family": "stability", "prompt": "a ginger cat asleep on a windowsill, soft morning light"},
            {"family": "amazon", "prompt": "An image of a ginger cat asleep on a windowsill"}
        ],
        "negative_prompt_suggestions": ["blurry"],
        "explanation": "light sets the mood"
    })));
    let check = bot.command(PERSON, "check", json!([option("prompt", "a cat")]), &[]).await;
    let critique = bot
        .eventually("the critique", || {
            bot.discord.interaction_original(&check).filter(|message| !button_ids(message).is_empty())
        })
        .await;
    assert_eq!(critique["embeds"][0]["title"], "Prompt check");
    let imagine = bot.press(PERSON, &button(&critique, "imagine"), &critique).await;
    bot.result_of(&imagine).await;
    let improved = critique["embeds"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|field| field["name"].as_str().unwrap().starts_with("1."))
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(improved, "a ginger cat asleep on a windowsill, soft morning light");
    assert_eq!(button_ids(&critique).len(), 2, "one Imagine button per improved prompt");
    let call = bot.bedrock.requests().into_iter().rev().find(|call| call.operation == Operation::InvokeModel).unwrap();
    assert_eq!(call.body["prompt"], improved, "the first improved prompt was drawn");

    let picture = bot.discord.attachment("photo.png", "image/png", png(256, 256));
    let describe = bot
        .command(
            PERSON,
            "describe",
            json!([{"name": "image", "type": 11, "value": picture["id"]}]),
            std::slice::from_ref(&picture),
        )
        .await;
    let described = bot
        .eventually("the description", || {
            bot.discord.interaction_original(&describe).filter(|message| !button_ids(message).is_empty())
        })
        .await;
    assert_eq!(button_ids(&described).len(), 4, "one Imagine button per suggestion");
}

#[tokio::test]
async fn chat_streams_into_a_thread_and_replies_there_continue_the_conversation() {
    let bot = Bot::start(&[("ATELIER_DISCORD_MESSAGE_CONTENT", "true")]).await;
    let long_answer = "Lighthouses look best at dusk. ".repeat(90);
    bot.bedrock.script(Behaviour::Delay(Duration::from_millis(40)));
    bot.bedrock.script(Behaviour::ChatReply(long_answer.clone()));
    bot.command(PERSON, "chat", json!([option("message", "How do I paint a lighthouse?")]), &[]).await;
    let thread = bot.eventually("the chat thread", || bot.discord.threads().pop()).await;
    let thread_id = thread["id"].as_str().unwrap().to_string();
    let answered = bot
        .eventually("the whole answer in the thread", || {
            let messages = bot.discord.channel_messages(&thread_id);
            let text: String = messages.iter().filter_map(|message| message["content"].as_str()).collect();
            (text.matches("Lighthouses look best at dusk.").count() == 90 && !text.contains('▌')).then_some(messages)
        })
        .await;
    assert!(answered.len() >= 2, "an answer over 2,000 characters continues in a second message");
    assert!(answered.iter().all(|message| message["content"].as_str().unwrap().chars().count() <= 2_000));
    let edits = bot
        .discord
        .requests()
        .iter()
        .filter(|request| {
            request.method == "PATCH" && request.path.contains(&format!("/channels/{thread_id}/messages/"))
        })
        .count();
    assert!(edits >= 1, "the answer was streamed by editing the message in place");

    bot.bedrock.script(Behaviour::Delay(Duration::ZERO));
    bot.bedrock.script(Behaviour::ChatReply("Use a warm palette.".into()));
    let reply = bot.discord.user_message(&thread_id, &DiscordStandIn::user(PERSON, "person"), "And the colours?");
    bot.discord.dispatch_message(reply).await;
    bot.eventually("the second answer", || {
        bot.discord
            .channel_messages(&thread_id)
            .into_iter()
            .find(|message| message["content"].as_str().is_some_and(|text| text.contains("warm palette")))
    })
    .await;
    let second_call =
        bot.bedrock.requests().into_iter().rev().find(|call| call.operation == Operation::ConverseStream).unwrap();
    let history = second_call.body["messages"].to_string();
    assert!(history.contains("How do I paint a lighthouse?") && history.contains("And the colours?"), "{history}");
}

#[tokio::test]
async fn link_issues_a_one_time_link_that_the_web_app_accepts() {
    let bot = Bot::start(&[]).await;
    let link = bot.command(PERSON, "link", json!([]), &[]).await;
    let answer = bot.private_answer(&link).await;
    let url = answer["components"][0]["components"][0]["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("https://atelier.example/link?token="), "{url}");
    let token = url.split("token=").nth(1).unwrap();
    let store = FolderStore::open(&bot.app.data.path().join("store")).await.unwrap();
    let accounts = Accounts::new(
        std::sync::Arc::new(store),
        std::sync::Arc::new(NoDirectory),
        &reqwest::Url::parse("https://atelier.example").unwrap(),
    );
    let offer = accounts.preview_link(token).await.unwrap();
    assert_eq!(offer.discord_user_id, PERSON);
}

/// "Sign in with Discord": a web sign-in whose ID token's `identities` claim names Discord
/// links that web account to the Discord user at once (no /link), moving the images made in
/// Discord into its gallery, and /me in Discord shows the link. The same Discord account
/// signing in to a second web account is not moved there silently.
#[tokio::test]
async fn signing_in_with_discord_links_the_web_account_at_once() {
    let provider = crate::support::oidc::OidcProvider::start().await;
    let bot = Bot::start_signed_in(&provider).await;
    let made =
        bot.result_of(&bot.command(PERSON, "imagine", json!([option("prompt", "a moth at a lamp")]), &[]).await).await;
    let image = target_of(&button(&made, "var")).to_string();
    let discord_identity = |subject: &str| {
        json!({
            "cognito:username": format!("Discord_{PERSON}"),
            "preferred_username": "person",
            "email": format!("{subject}@example.com"),
            "identities": [{
                "userId": PERSON.to_string(), "providerName": "Discord", "providerType": "OIDC",
                "issuer": null, "primary": "true", "dateCreated": "1700000000000"
            }]
        })
    };
    let sign_in = |subject: &'static str| {
        let (bot, provider) = (&bot, &provider);
        async move {
            let browser = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let start = browser.get(bot.app.url("/signin?next=/gallery")).send().await.unwrap();
            let authorize = start.headers()["location"].to_str().unwrap().to_string();
            let callback = provider.authorize(&authorize, subject).await;
            let back = browser.get(callback.url.as_str()).send().await.unwrap();
            assert_eq!(back.status(), reqwest::StatusCode::SEE_OTHER, "{}", back.text().await.unwrap());
            browser
        }
    };
    provider.set_user("dana", discord_identity("dana")).await;
    let browser = sign_in("dana").await;

    // Linked at once: the image made in Discord is in the web gallery, and the account says so.
    assert!(record_in(&bot, "web-dana", &image).is_some(), "the Discord image did not move into the web gallery");
    assert!(record_in(&bot, &format!("discord-{PERSON}"), &image).is_none());
    let gallery = browser.get(bot.app.url("/api/images")).send().await.unwrap().text().await.unwrap();
    assert!(gallery.contains(&image), "{gallery}");
    let account = browser.get(bot.app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(account.contains("data-testid=\"linked-discord\"") && account.contains("person"), "{account}");
    let me = bot.private_answer(&bot.command(PERSON, "me", json!([]), &[]).await).await;
    assert!(me.to_string().contains(&format!("linked to **Discord_{PERSON}**")), "{me:#}");

    // The same Discord account signing in to another web account is not moved there.
    provider.set_user("erin", discord_identity("erin")).await;
    let other = sign_in("erin").await;
    let account = other.get(bot.app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(account.contains("data-testid=\"discord-linked-elsewhere\""), "{account}");
    assert!(record_in(&bot, "web-dana", &image).is_some(), "the image left the first account");
    let me = bot.private_answer(&bot.command(PERSON, "me", json!([]), &[]).await).await;
    assert!(me.to_string().contains(&format!("linked to **Discord_{PERSON}**")), "{me:#}");
}

/// The gallery record of an image, read from `owner`'s gallery in the store, if it is there.
fn record_in(bot: &Bot, owner: &str, id: &str) -> Option<Value> {
    let folder = bot.app.data.path().join(format!("store/users/{owner}/records"));
    std::fs::read_dir(&folder)
        .ok()?
        .filter_map(|entry| std::fs::read(entry.unwrap().path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .find(|record| record["id"] == id)
}

#[tokio::test]
async fn after_linking_the_buttons_of_earlier_results_and_earlier_settings_keep_working() {
    let bot = Bot::start(&[]).await;
    let settings = bot.command(PERSON, "settings", json!([option("aspect", "9:16")]), &[]).await;
    bot.private_answer(&settings).await;
    let imagine = bot.command(PERSON, "imagine", json!([option("prompt", "a red fox in snow")]), &[]).await;
    let earlier = bot.result_of(&imagine).await;
    let image = target_of(&button(&earlier, "var")).to_string();
    assert!(button(&earlier, "var").contains(&format!(":discord-{PERSON}:")), "the button names the Discord owner");

    // /link, then confirm on the web as the web app does (over the same store).
    let link = bot.command(PERSON, "link", json!([]), &[]).await;
    let answer = bot.private_answer(&link).await;
    let url = answer["components"][0]["components"][0]["url"].as_str().unwrap().to_string();
    let token = url.split("token=").nth(1).unwrap();
    let store = FolderStore::open(&bot.app.data.path().join("store")).await.unwrap();
    let accounts = Accounts::new(
        std::sync::Arc::new(store),
        std::sync::Arc::new(NoDirectory),
        &reqwest::Url::parse("https://atelier.example").unwrap(),
    );
    let alice = SignedInUser {
        discord: None,
        subject: "alice".into(),
        username: "alice".into(),
        email: None,
        name: None,
        owner: Owner::web_account("alice").unwrap(),
    };
    let linked = accounts.consume_link(token, &alice).await.unwrap();
    assert_eq!(linked.images_moved, 1);
    assert!(record_in(&bot, &format!("discord-{PERSON}"), &image).is_none(), "the image moved");
    assert!(record_in(&bot, "web-alice", &image).is_some());

    // Variations on the earlier result works from the moved image, now the web account's.
    let pressed = bot.press(PERSON, &button(&earlier, "var"), &earlier).await;
    let made = bot.result_of(&pressed).await;
    let child = made["embeds"][0]["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let child_record = record_in(&bot, "web-alice", &child).expect("the variation is in the web gallery");
    assert_eq!(child_record["parent"].as_str(), Some(image.as_str()));
    assert!(button(&made, "var").contains(":web-alice:"), "new buttons name the web account");

    // More (details) on the earlier result.
    let details = bot.press(PERSON, &button(&earlier, "info"), &earlier).await;
    let shown = bot.private_answer(&details).await;
    assert_eq!(shown["embeds"][0]["title"], "Image details", "{shown:#}");

    // The settings made before the link fill in a later /imagine.
    let later = bot.command(PERSON, "imagine", json!([option("prompt", "a tall tower")]), &[]).await;
    bot.result_of(&later).await;
    let call = bot.bedrock.requests().into_iter().rev().find(|call| call.operation == Operation::InvokeModel).unwrap();
    assert_eq!(call.body["aspect_ratio"], "9:16", "{:#}", call.body);

    // Delete on the earlier result: refused to someone else, done for the linked person.
    let refused = bot.press(SOMEONE_ELSE, &button(&earlier, "del"), &earlier).await;
    let answer = bot.private_answer(&refused).await;
    assert!(answer["content"].as_str().unwrap().contains("Only the person who made this image"), "{answer:#}");
    let deleted = bot.press(PERSON, &button(&earlier, "del"), &earlier).await;
    let answer = bot.private_answer(&deleted).await;
    assert!(answer["content"].as_str().unwrap().contains("Deleted"), "{answer:#}");
    assert!(record_in(&bot, "web-alice", &image).is_none());
}

#[tokio::test]
async fn a_job_that_outlives_its_interaction_token_is_posted_to_the_channel() {
    let bot = Bot::start(&[]).await;
    bot.bedrock.script(Behaviour::Delay(Duration::from_millis(1_500)));
    let interaction = bot.command(PERSON, "imagine", json!([option("prompt", "a slow sunrise")]), &[]).await;
    bot.eventually("the acknowledgement", || bot.discord.interaction_callback(&interaction)).await;
    // As if fifteen minutes had passed while the model worked.
    bot.discord.expire_interaction_tokens();
    let posted = bot
        .eventually("the result as a channel message", || {
            bot.discord.channel_messages(CHANNEL_ID).into_iter().find(|message| {
                shows_an_image(message)
                    && message["content"].as_str().is_some_and(|text| text.contains(&format!("<@{PERSON}>")))
            })
        })
        .await;
    assert!(!button_ids(&posted).is_empty(), "the late result keeps its buttons");
}

#[tokio::test]
async fn results_too_large_for_the_upload_limit_go_out_as_gallery_links() {
    let bot = Bot::start(&[]).await;
    bot.discord.set_attachment_size_limit(1_000);
    let interaction = bot.command(PERSON, "imagine", json!([option("prompt", "a detailed map")]), &[]).await;
    let result = bot
        .eventually("the result", || {
            bot.discord
                .interaction_original(&interaction)
                .filter(|message| message["content"].as_str().is_some_and(|text| text.contains("Too large")))
        })
        .await;
    assert!(!shows_an_image(&result), "nothing over the limit was uploaded");
    assert!(result["embeds"][0]["url"].as_str().unwrap().contains("/gallery/"));
}

#[tokio::test]
async fn the_bot_resumes_after_a_dropped_gateway_and_waits_out_rate_limits() {
    let bot = Bot::start(&[]).await;
    bot.discord.drop_gateway().await;
    let interaction = bot.command(PERSON, "imagine", json!([option("prompt", "a quiet harbour")]), &[]).await;
    // Rate-limit the result's upload once: the bot must wait and send it again.
    bot.discord.fail_next("PATCH", "/messages/@original", 429, 2);
    bot.result_of(&interaction).await;
    assert_eq!(bot.discord.resume_count(), 1, "the session was resumed, not identified anew");
    let limited = bot.discord.requests().iter().filter(|request| request.status == 429).count();
    assert_eq!(limited, 2);
}

#[tokio::test]
async fn settings_fill_in_what_a_request_leaves_out_and_private_results_stay_private() {
    let bot = Bot::start(&[]).await;
    let settings = bot
        .command(
            PERSON,
            "settings",
            json!([option("aspect", "9:16"), {"name": "private_results", "type": 5, "value": true}]),
            &[],
        )
        .await;
    bot.private_answer(&settings).await;
    let interaction = bot.command(PERSON, "imagine", json!([option("prompt", "a tall tower")]), &[]).await;
    let result = bot.result_of(&interaction).await;
    assert!(is_ephemeral(&result), "private results are only for their author");
    let call = bot.bedrock.requests().into_iter().find(|call| call.operation == Operation::InvokeModel).unwrap();
    assert_eq!(call.body["aspect_ratio"], "9:16");

    let refused = bot.command(PERSON, "settings", json!([option("model", "dall-e")]), &[]).await;
    let answer = bot.private_answer(&refused).await;
    assert!(answer["content"].as_str().unwrap().contains("dall-e"), "{answer:#}");
}

#[tokio::test]
async fn imagine_and_edit_put_images_in_the_session_they_name_and_a_variation_stays_in_it() {
    let bot = Bot::start(&[]).await;
    let imagine = bot
        .command(PERSON, "imagine", json!([option("prompt", "a harbour at dawn"), option("session", "trip")]), &[])
        .await;
    let result = bot.result_of(&imagine).await;
    let made = |message: &Value| message["embeds"][0]["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    assert_eq!(stored_record(&bot, &made(&result))["session"], "trip");

    // A variation of it stays in its session: the core's rule, not the button's.
    let pressed = bot.press(PERSON, &button(&result, "var"), &result).await;
    let variation = bot.result_of(&pressed).await;
    let child = stored_record(&bot, &made(&variation));
    assert_eq!((child["parent"].as_str(), &child["session"]), (Some(made(&result).as_str()), &json!("trip")));

    let picture = bot.discord.attachment("quay.png", "image/png", png(512, 512));
    let edit = bot
        .command(
            PERSON,
            "edit",
            json!([
                {"name": "image", "type": 11, "value": picture["id"]},
                {"name": "mode", "type": 4, "value": 2},
                option("session", "quays")
            ]),
            std::slice::from_ref(&picture),
        )
        .await;
    let edited = bot.result_of(&edit).await;
    assert_eq!(stored_record(&bot, &made(&edited))["session"], "quays");
}

#[tokio::test]
async fn imagine_keeps_the_image_in_the_gallery_on_s3() {
    let moto = crate::support::moto::Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk_config).force_path_style(true).build());
    s3.create_bucket().bucket("bot-gallery").send().await.unwrap();
    let discord = DiscordStandIn::start().await;
    let (api, gateway) = (discord.url(), discord.gateway_url());
    let _app = TestApp::spawn_with_aws(
        &[
            ("ATELIER_ENGINE", "demo"),
            ("ATELIER_STORE", "s3://bot-gallery"),
            ("ATELIER_S3_FORCE_PATH_STYLE", "true"),
            ("ATELIER_DISCORD_TOKEN", "stand-in-token"),
            ("ATELIER_DISCORD_APPLICATION_ID", APPLICATION_ID),
            ("ATELIER_DISCORD_API_URL", &api),
            ("ATELIER_DISCORD_GATEWAY_URL", &gateway),
        ],
        sdk_config,
    )
    .await;
    discord.wait_until_ready().await;
    let interaction = discord.slash_command(
        &DiscordStandIn::user(PERSON, "person"),
        "imagine",
        json!([option("prompt", "a harbour at night")]),
        &[],
    );
    let id = interaction["id"].as_str().unwrap().to_string();
    discord.dispatch_interaction(interaction).await;
    eventually("the result", || discord.interaction_original(&id).filter(shows_an_image)).await;
    let listed =
        s3.list_objects_v2().bucket("bot-gallery").prefix(format!("users/discord-{PERSON}/")).send().await.unwrap();
    let keys: Vec<String> = listed.contents().iter().filter_map(|object| object.key().map(String::from)).collect();
    assert!(keys.iter().any(|key| key.contains("/images/")), "{keys:?}");
    assert!(keys.iter().any(|key| key.contains("/records/")), "{keys:?}");
}

/// With the store unreachable before the command arrives, `/imagine` still delivers its image
/// (who the person is comes from memory or their own Discord id; the image waits in the
/// spool), and once the store is back the image and its record land in their gallery, once.
#[tokio::test]
async fn with_the_store_down_before_the_command_imagine_still_delivers_and_stores_it_once_back() {
    let spool = tempfile::tempdir().unwrap();
    let bot = Bot::start(&[("ATELIER_SPOOL_DIR", spool.path().to_str().unwrap())]).await;
    let store = bot.app.data.path().join("store");
    // The store's folder becomes a plain file: nothing can be read or written there.
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::write(&store, "in the way").unwrap();

    let interaction =
        bot.command(PERSON, "imagine", json!([option("prompt", "a lighthouse while the store is down")]), &[]).await;
    let result = bot.result_of(&interaction).await;
    assert!(shows_an_image(&result), "{result:#}");

    // The store comes back: the spooled image and its record are written under the person.
    std::fs::remove_file(&store).unwrap();
    std::fs::create_dir(&store).unwrap();
    let person = store.join(format!("users/discord-{PERSON}"));
    let count = |folder: &str| std::fs::read_dir(person.join(folder)).map(|entries| entries.count()).unwrap_or(0);
    bot.eventually("the spooled image stored", || (count("records") == 1 && count("images") == 1).then_some(())).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!((count("records"), count("images")), (1, 1), "stored once");
}

/// With S3 unreachable from the moment Atelier starts (a network outage, not a setting to
/// fix), it starts anyway; `/imagine` delivers its image (it waits in the spool), and once S3
/// answers again the image and its record land under the person, once.
#[tokio::test]
async fn with_s3_unreachable_from_the_start_imagine_delivers_and_stores_it_once_back() {
    let moto = crate::support::moto::Moto::start().await;
    let direct = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&direct).force_path_style(true).build());
    s3.create_bucket().bucket("outage-gallery").send().await.unwrap();
    let relay = crate::support::relay::Relay::start(([127, 0, 0, 1], moto.port).into()).await;
    relay.cut();
    let through_relay = direct.to_builder().endpoint_url(relay.endpoint()).build();
    let spool = tempfile::tempdir().unwrap();
    let discord = DiscordStandIn::start().await;
    let (api, gateway) = (discord.url(), discord.gateway_url());
    let app = TestApp::spawn_with_store_unreachable(
        &[
            ("ATELIER_ENGINE", "demo"),
            ("ATELIER_STORE", "s3://outage-gallery"),
            ("ATELIER_S3_FORCE_PATH_STYLE", "true"),
            ("ATELIER_SPOOL_DIR", spool.path().to_str().unwrap()),
            ("ATELIER_DISCORD_TOKEN", "stand-in-token"),
            ("ATELIER_DISCORD_APPLICATION_ID", APPLICATION_ID),
            ("ATELIER_DISCORD_API_URL", &api),
            ("ATELIER_DISCORD_GATEWAY_URL", &gateway),
        ],
        through_relay,
    )
    .await;
    discord.wait_until_ready().await;
    // A page that needs the store says so plainly, as an outage that passes.
    let (status, page) = app.get_text("/gallery").await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(page.contains("image store is not answering right now"), "{page}");
    let interaction = discord.slash_command(
        &DiscordStandIn::user(PERSON, "person"),
        "imagine",
        json!([option("prompt", "a harbour in a power cut")]),
        &[],
    );
    let id = interaction["id"].as_str().unwrap().to_string();
    discord.dispatch_interaction(interaction).await;
    let result = eventually("the result", || discord.interaction_original(&id).filter(shows_an_image)).await;
    assert!(shows_an_image(&result), "{result:#}");
    let stored = || async {
        let listed = s3.list_objects_v2().bucket("outage-gallery").prefix(format!("users/discord-{PERSON}/")).send();
        let listed = listed.await.unwrap();
        let keys: Vec<String> = listed.contents().iter().filter_map(|object| object.key().map(String::from)).collect();
        let count = |part: &str| keys.iter().filter(|key| key.contains(part)).count();
        (count("/images/"), count("/records/"))
    };
    assert_eq!(stored().await, (0, 0), "nothing reached S3 while it was away");

    relay.restore();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while stored().await.1 == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored().await, (1, 1), "the image and its record are stored once under the person");
}

/// A person the operator bans with `atelier admin ban` (on the store a running bot uses) is
/// refused by every command and button, privately and at no cost, within the few seconds a
/// replica trusts its last look; lifting the ban gives everything back.
#[tokio::test]
async fn a_banned_discord_user_is_refused_everything_and_costs_nothing() {
    const PERSON: u64 = 4_242;
    let bot = Bot::start(&[]).await;
    let store = format!("file://{}", bot.app.data.path().join("store").display());
    let admin = |arguments: &[&str]| {
        let mut command = crate::support::atelier(bot.app.data.path());
        command.arg("admin").args(arguments).env("ATELIER_STORE", &store).env("ATELIER_ENGINE", "demo");
        crate::support::run(&mut command)
    };
    // Seen not banned first, so the running bot has something to forget.
    let first = bot.command(PERSON, "imagine", json!([option("prompt", "a lantern")]), &[]).await;
    assert!(shows_an_image(&bot.result_of(&first).await));

    let (output, stdout, stderr) = admin(&["ban", &format!("discord:{PERSON}"), "--reason", "spam"]);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains(&format!("banned discord-{PERSON}")), "{stdout}");
    let (_, listed, _) = admin(&["bans"]);
    assert!(listed.contains(&format!("discord-{PERSON}")) && listed.contains("spam"), "{listed}");

    tokio::time::sleep(atelier_shared::NOT_BANNED_MEMORY).await;
    let calls = bot.image_calls();
    let refused = bot.command(PERSON, "imagine", json!([option("prompt", "a second lantern")]), &[]).await;
    let answer = bot
        .eventually("the refusal", || {
            bot.discord.interaction_callback(&refused).filter(|callback| callback["data"]["content"].is_string())
        })
        .await;
    let text = answer["data"]["content"].as_str().unwrap_or_default();
    assert!(text.contains("banned"), "{answer}");
    assert_eq!(answer["data"]["flags"].as_u64().unwrap_or_default() & 64, 64, "the refusal is private: {answer}");
    assert_eq!(bot.image_calls(), calls, "a banned person's command called the model");

    let (output, _, stderr) = admin(&["unban", &format!("discord:{PERSON}")]);
    assert!(output.status.success(), "{stderr}");
    let again = bot.command(PERSON, "imagine", json!([option("prompt", "a third lantern")]), &[]).await;
    assert!(shows_an_image(&bot.result_of(&again).await));
}

/// Publishing from Discord: the Publish button answers privately with the image's public page
/// and its server's gallery; the page needs no sign-in, carries Open Graph tags whose image
/// can be fetched, and is cacheable; the server gallery lists exactly the published images;
/// Unpublish takes the page, its image and the gallery entry away (404).
#[tokio::test]
async fn published_images_have_a_public_page_and_a_server_gallery_until_unpublished() {
    let bot = Bot::start(&[]).await;
    let anonymous = reqwest::Client::new();
    let mut made = Vec::new();
    for prompt in ["a red kite over dunes", "a blue kite over the sea"] {
        let interaction = bot.command(PERSON, "imagine", json!([option("prompt", prompt)]), &[]).await;
        made.push(bot.result_of(&interaction).await);
    }
    let (published, kept_private) = (&made[0], &made[1]);
    let publish = button(published, "pub");
    let id = target_of(&publish);
    let answer = bot.private_answer(&bot.press(PERSON, &publish, published).await).await;
    let text = answer["content"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("https://atelier.example/p/{id}")), "{answer}");
    let guild_gallery = format!("/servers/{}", crate::support::discord::GUILD_ID);
    assert!(text.contains(&format!("https://atelier.example{guild_gallery}")), "{answer}");

    // The public page, as Discord's unfurler fetches it: no cookie, no sign-in.
    let page = anonymous.get(bot.app.url(&format!("/p/{id}"))).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let cache = page.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cache.starts_with("public"), "{cache}");
    assert!(page.headers().get("set-cookie").is_none(), "a public page set a cookie");
    let html = page.text().await.unwrap();
    assert!(html.contains("a red kite over dunes"), "{html}");
    let og_image = meta_content(&html, "og:image").expect("no og:image");
    assert_eq!(og_image, format!("https://atelier.example/p/{id}/full"));
    assert_eq!(meta_content(&html, "twitter:card").as_deref(), Some("summary_large_image"));
    let image_path = og_image.trim_start_matches("https://atelier.example");
    let image = anonymous.get(bot.app.url(image_path)).send().await.unwrap();
    assert_eq!(image.status(), reqwest::StatusCode::OK);
    assert_eq!(image.headers()["content-type"], "image/png");
    assert!(image.bytes().await.unwrap().starts_with(b"\x89PNG"));

    // The server's gallery lists exactly the published image.
    let gallery = anonymous.get(bot.app.url(&guild_gallery)).send().await.unwrap().text().await.unwrap();
    assert!(gallery.contains(&format!("/p/{id}")), "{gallery}");
    assert!(!gallery.contains(target_of(&button(kept_private, "pub"))), "an unpublished image is listed");
    assert_eq!(gallery.matches("data-testid=\"server-gallery-item\"").count(), 1, "{gallery}");

    // Unpublished: the page, its image and the gallery entry are gone, and not to be cached.
    let unpublish = button(&answer, "unpub");
    let done = bot.private_answer(&bot.press(PERSON, &unpublish, &answer).await).await;
    assert!(done["content"].as_str().unwrap_or_default().contains("Unpublished"), "{done}");
    for path in [format!("/p/{id}"), format!("/p/{id}/full")] {
        let gone = anonymous.get(bot.app.url(&path)).send().await.unwrap();
        assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND, "{path}");
        assert_eq!(gone.headers()["cache-control"], "no-store");
    }
    let gallery = anonymous.get(bot.app.url(&guild_gallery)).send().await.unwrap().text().await.unwrap();
    assert_eq!(gallery.matches("data-testid=\"server-gallery-item\"").count(), 0, "{gallery}");

    // Someone else cannot publish another person's image.
    let theirs = bot.private_answer(&bot.press(SOMEONE_ELSE, &button(kept_private, "pub"), kept_private).await).await;
    assert!(!theirs["content"].as_str().unwrap_or_default().contains("Published"), "{theirs}");
    let private_button = button(kept_private, "pub");
    let private_id = target_of(&private_button);
    let refused = anonymous.get(bot.app.url(&format!("/p/{private_id}"))).send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::NOT_FOUND);
}

/// The `content` of a `<meta property|name="{name}">` tag in a page.
fn meta_content(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("=\"{name}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>')?];
    let content = tag.split("content=\"").nth(1)?;
    Some(content.split('"').next()?.replace("&amp;", "&"))
}

/// A server's admins (Manage Server) set where results are posted, which models may be used,
/// a daily budget for the whole server and its own moderation log; members without the
/// permission cannot change anything, whatever Discord showed them.
#[tokio::test]
async fn server_admins_set_channels_models_budget_and_moderation_log_and_others_cannot() {
    const ADMIN: u64 = 3_000_000_000_000_000_009;
    let bot = Bot::start(&[]).await;
    bot.discord.grant_manage_server(ADMIN);
    let admin_bot = &bot;
    let server = |user: u64, subcommand: &str, option: Option<(&str, &str)>| {
        let options: Vec<Value> =
            option.map(|(name, value)| json!({"name": name, "type": 3, "value": value})).into_iter().collect();
        let subcommand = json!([{"name": subcommand, "type": 1, "options": options}]);
        async move {
            let bot = admin_bot;
            let answer = bot.server_command(user, subcommand).await;
            assert_eq!(answer["data"]["flags"].as_u64().unwrap_or_default() & 64, 64, "not private: {answer}");
            answer["data"]["content"].as_str().unwrap_or_default().to_string()
        }
    };
    let allowed = format!("<#{MODERATION_CHANNEL}>");

    // A member without Manage Server is refused, and nothing changes.
    let refused = server(PERSON, "channels", Some(("channels", &allowed))).await;
    assert!(refused.contains("Manage Server"), "{refused}");
    assert!(server(ADMIN, "show", None).await.contains("Results are posted in: any channel"));

    // Results only in the other channel: asked here, the image goes to its person alone, saying where.
    let saved = server(ADMIN, "channels", Some(("channels", &allowed))).await;
    assert!(saved.contains(&format!("Results are posted in: {allowed}")), "{saved}");
    let asked_here = bot.command(PERSON, "imagine", json!([option("prompt", "a harbour at dawn")]), &[]).await;
    let result =
        bot.eventually("the result", || bot.discord.interaction_original(&asked_here).filter(shows_an_image)).await;
    assert_eq!(result["flags"].as_u64().unwrap_or_default() & 64, 64, "the result is not private: {result:#}");
    assert!(result["content"].as_str().unwrap_or_default().contains(&allowed), "{result:#}");
    assert!(
        bot.discord
            .channel_messages(CHANNEL_ID)
            .iter()
            .all(|message| !message.to_string().contains("a harbour at dawn")),
        "the result was posted in a channel the server does not allow"
    );

    // Models: only titan-v2 here; core is refused before any call.
    assert!(server(ADMIN, "models", Some(("models", "titan-v2"))).await.contains("Models: titan-v2"));
    let calls = bot.image_calls();
    let wrong_model =
        bot.command(PERSON, "imagine", json!([option("prompt", "a fox"), option("model", "core")]), &[]).await;
    let answer = bot
        .eventually("the refusal", || {
            bot.discord.interaction_callback(&wrong_model).filter(|callback| callback["data"]["content"].is_string())
        })
        .await;
    assert!(
        answer["data"]["content"].as_str().unwrap_or_default().contains("allows these models: titan-v2"),
        "{answer}"
    );
    assert_eq!(bot.image_calls(), calls);
    assert!(server(ADMIN, "models", None).await.contains("Models: every model"));

    // The server's own moderation log gets the refusal line.
    server(ADMIN, "moderation-channel", Some(("channel", &allowed))).await;
    bot.bedrock.script(Behaviour::ToolUse(json!({"verdict": "blocked", "category": "violence", "reason": "gore"})));
    bot.command(PERSON, "imagine", json!([option("prompt", "a zombie film poster")]), &[]).await;
    let logged =
        bot.eventually("the moderation log line", || bot.discord.channel_messages(MODERATION_CHANNEL).pop()).await;
    assert!(logged["content"].as_str().unwrap_or_default().contains("gore"), "{logged}");

    // A server budget of one cent: a $0.04 image is refused, and nothing is charged.
    assert!(server(ADMIN, "budget", Some(("dollars", "0.01"))).await.contains("Server budget: $0.01 a day"));
    let calls = bot.image_calls();
    let over =
        bot.command(PERSON, "imagine", json!([option("prompt", "a lighthouse"), option("model", "core")]), &[]).await;
    let refusal = bot.private_answer(&over).await;
    assert!(
        refusal["content"].as_str().unwrap_or_default().contains("server has used its daily budget"),
        "{refusal:#}"
    );
    assert_eq!(bot.image_calls(), calls, "an image past the server's budget was drawn");
    let me = bot.private_answer(&bot.command(PERSON, "me", json!([]), &[]).await).await;
    // Only the one image drawn earlier is counted and charged.
    let quota = me["embeds"][0]["fields"][0]["value"].as_str().unwrap_or_default();
    assert!(quota.starts_with("99 of 100") && quota.contains("$4.96 of today's $5.00"), "{me:#}");
}

/// A server's admins give a role a larger personal budget: a member with the role may spend up
/// to it there, and everyone else keeps the service's budget.
#[tokio::test]
async fn a_role_with_a_budget_raises_its_members_personal_budget_on_that_server() {
    const ADMIN: u64 = 3_000_000_000_000_000_009;
    const PATRONS: u64 = 4_000_000_000_000_000_001;
    let bot = Bot::start(&[("ATELIER_DAILY_BUDGET_USD", "0.05")]).await;
    bot.discord.grant_manage_server(ADMIN);
    let imagine = |user: u64, prompt: &'static str| {
        let bot = &bot;
        async move { bot.command(user, "imagine", json!([option("prompt", prompt), option("model", "core")]), &[]).await }
    };
    // $0.04 an image against $0.05 a day: the second is refused.
    bot.result_of(&imagine(PERSON, "a lantern").await).await;
    let refused = bot.private_answer(&imagine(PERSON, "a second lantern").await).await;
    assert!(refused["content"].as_str().unwrap_or_default().contains("today's budget of $0.05"), "{refused:#}");

    // A member without Manage Server cannot give a role a budget.
    let role = format!("<@&{PATRONS}>");
    let set = |user: u64, dollars: &'static str| {
        let bot = &bot;
        let role = role.clone();
        async move {
            let options = json!([{"name": "role-budget", "type": 1, "options": [
                {"name": "role", "type": 3, "value": role}, {"name": "dollars", "type": 3, "value": dollars}
            ]}]);
            let answer = bot.server_command(user, options).await;
            answer["data"]["content"].as_str().unwrap_or_default().to_string()
        }
    };
    assert!(set(PERSON, "1").await.contains("Manage Server"));
    let saved = set(ADMIN, "1").await;
    assert!(saved.contains(&format!("Personal budgets by role: {role} $1.00 a day")), "{saved}");

    // Without the role, still refused; with it, the same person may go on, and /me says so.
    let calls = bot.image_calls();
    let still = bot.private_answer(&imagine(PERSON, "a third lantern").await).await;
    assert!(still["content"].as_str().unwrap_or_default().contains("today's budget of $0.05"), "{still:#}");
    assert_eq!(bot.image_calls(), calls);
    bot.discord.give_role(PERSON, PATRONS);
    bot.result_of(&imagine(PERSON, "a lantern for patrons").await).await;
    assert_eq!(bot.image_calls(), calls + 1);
    let me = bot.private_answer(&bot.command(PERSON, "me", json!([]), &[]).await).await;
    let budget = me["embeds"][0]["fields"][0]["value"].as_str().unwrap_or_default();
    assert!(budget.contains("$0.92 of today's $1.00"), "{me:#}");
    // Someone else on the server keeps the service's budget.
    bot.result_of(&imagine(SOMEONE_ELSE, "a kite").await).await;
    let other = bot.private_answer(&imagine(SOMEONE_ELSE, "a second kite").await).await;
    assert!(other["content"].as_str().unwrap_or_default().contains("today's budget of $0.05"), "{other:#}");
}

/// The safety check asked for a Discord request: its system instructions, from the stand-in's
/// record of Converse calls that offer the verdict tool.
fn safety_checks(bot: &Bot) -> Vec<String> {
    bot.bedrock
        .requests()
        .into_iter()
        .filter(|call| call.operation == Operation::Converse && call.body.to_string().contains("record_verdict"))
        .map(|call| call.body["system"][0]["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Outside age-restricted channels the safety check is stricter (the classifier is told the
/// image is for all ages), a refusal there is told only to its person, and the same prompt
/// in the age-restricted channel is checked afresh under the standard policy. A server may
/// choose the same policy everywhere.
#[tokio::test]
async fn the_safety_check_is_stricter_outside_age_restricted_channels() {
    use crate::support::discord::AGE_RESTRICTED_CHANNEL_ID;
    const ADMIN: u64 = 3_000_000_000_000_000_009;
    let bot = Bot::start(&[]).await;
    bot.discord.grant_manage_server(ADMIN);
    let person = DiscordStandIn::user(PERSON, "person");

    // In the ordinary channel: refused for all ages, privately, and nothing is posted.
    bot.bedrock.script(Behaviour::ToolUse(json!({"verdict": "blocked", "category": "sexual", "reason": "nudity"})));
    let calls = bot.image_calls();
    let here = bot.command(PERSON, "imagine", json!([option("prompt", "a figure study in charcoal")]), &[]).await;
    let refusal = bot.private_answer(&here).await;
    assert!(refusal["content"].as_str().unwrap_or_default().contains("nudity"), "{refusal:#}");
    assert_eq!(bot.image_calls(), calls);
    assert!(
        bot.discord.channel_messages(CHANNEL_ID).iter().all(|message| !message.to_string().contains("figure study")),
        "a refused prompt was posted"
    );
    let checks = safety_checks(&bot);
    assert_eq!(checks.len(), 1);
    assert!(checks[0].contains("people of any age may see it"), "{}", checks[0]);

    // The same prompt in the age-restricted channel: asked again, standard policy, drawn.
    let interaction = bot.discord.slash_command_in(
        AGE_RESTRICTED_CHANNEL_ID,
        &person,
        "imagine",
        json!([option("prompt", "a figure study in charcoal")]),
    );
    let there = interaction["id"].as_str().unwrap().to_string();
    bot.discord.dispatch_interaction(interaction).await;
    bot.result_of(&there).await;
    let checks = safety_checks(&bot);
    assert_eq!(checks.len(), 2, "the verdict for all ages was reused in the age-restricted channel");
    assert!(!checks[1].contains("any age"), "{}", checks[1]);

    // The same policy everywhere (poise sends a choice as an integer: the second, 1): the
    // ordinary channel gets the standard check.
    let options = json!([{"name": "age-policy", "type": 1, "options": [{"name": "policy", "type": 4, "value": 1}]}]);
    let answer = bot.server_command(ADMIN, options).await;
    assert!(
        answer["data"]["content"].as_str().unwrap_or_default().contains("Safety check: the same in every channel"),
        "{answer}"
    );
    bot.result_of(&bot.command(PERSON, "imagine", json!([option("prompt", "a charcoal landscape")]), &[]).await).await;
    let checks = safety_checks(&bot);
    assert_eq!(checks.len(), 3);
    assert!(!checks[2].contains("any age"), "{}", checks[2]);
}

/// `atelier admin usage --json` counts what the bot was asked for: each delivered image job
/// and each answered text call, by model, person and server, with its estimated cost.
#[tokio::test]
async fn admin_usage_totals_match_the_jobs_that_ran() {
    let bot = Bot::start(&[]).await;
    let store = format!("file://{}", bot.app.data.path().join("store").display());
    let one =
        bot.command(PERSON, "imagine", json!([option("prompt", "a lantern"), option("model", "core")]), &[]).await;
    bot.result_of(&one).await;
    let two = bot
        .command(
            SOMEONE_ELSE,
            "imagine",
            json!([option("prompt", "two kites"), option("model", "titan"), {"name": "count", "type": 4, "value": 2}]),
            &[],
        )
        .await;
    bot.result_of(&two).await;
    let usage = || {
        let mut command = crate::support::atelier(bot.app.data.path());
        command.args(["admin", "usage", "--json"]).env("ATELIER_STORE", &store).env("ATELIER_ENGINE", "demo");
        let (output, stdout, stderr) = crate::support::run(&mut command);
        assert!(output.status.success(), "{stderr}");
        serde_json::from_str::<Value>(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
    };
    // The records are written as each job's bookkeeping ends, just after its answer.
    let report =
        bot.eventually("both jobs in the usage", || Some(usage()).filter(|report| report["total"]["calls"] == 2)).await;
    assert_eq!(report["total"]["images"], 3, "{report:#}");
    let by_model = &report["by_model"];
    let core = by_model.as_object().unwrap().iter().find(|(id, _)| id.contains("stable-image-core")).expect("core");
    assert_eq!(core.1["images"], 1);
    assert!((core.1["cost_usd"].as_f64().unwrap() - 0.04).abs() < 1e-9, "{report:#}");
    let titan = by_model.as_object().unwrap().iter().find(|(id, _)| id.contains("titan")).expect("titan");
    assert_eq!(titan.1["images"], 2);
    assert_eq!(report["by_person"][format!("discord-{PERSON}")]["images"], 1);
    assert_eq!(report["by_person"][format!("discord-{SOMEONE_ELSE}")]["images"], 2);
    assert_eq!(report["by_server"][crate::support::discord::GUILD_ID]["images"], 3);
    let total = report["total"]["cost_usd"].as_f64().unwrap();
    let parts: f64 = by_model.as_object().unwrap().values().map(|totals| totals["cost_usd"].as_f64().unwrap()).sum();
    assert!((total - parts).abs() < 1e-9, "{report:#}");
}

/// The operator's job and budget tools act on the store a running bot uses: `admin jobs`
/// lists a job waiting its turn, `admin cancel` calls it back at no charge, and `admin
/// reset-budget` starts a person's day again.
#[tokio::test]
async fn admin_lists_and_cancels_jobs_and_resets_a_persons_day() {
    let bot = Bot::start(&[("ATELIER_MAX_RUNNING_JOBS", "1")]).await;
    let store = format!("file://{}", bot.app.data.path().join("store").display());
    let admin = |arguments: &[&str]| {
        let mut command = crate::support::atelier(bot.app.data.path());
        command.arg("admin").args(arguments).env("ATELIER_STORE", &store).env("ATELIER_ENGINE", "demo");
        crate::support::run(&mut command)
    };
    let first =
        bot.command(PERSON, "imagine", json!([option("prompt", "a lantern"), option("model", "core")]), &[]).await;
    bot.result_of(&first).await;

    // One job holds the only slot for a while; the next waits behind it.
    bot.bedrock.script(Behaviour::Delay(Duration::from_secs(4)));
    let calls = bot.image_calls();
    bot.command(PERSON, "imagine", json!([option("prompt", "a slow one"), option("model", "core")]), &[]).await;
    bot.eventually("the slow job at the model", || (bot.image_calls() > calls).then_some(())).await;
    bot.command(SOMEONE_ELSE, "imagine", json!([option("prompt", "the waiting one"), option("model", "core")]), &[])
        .await;
    let waiting = bot
        .eventually("two jobs listed", || {
            let (output, stdout, _) = admin(&["jobs", "--json"]);
            let jobs: Vec<Value> = output.status.success().then(|| serde_json::from_str(&stdout).ok()).flatten()?;
            (jobs.len() == 2).then_some(jobs)
        })
        .await;
    let theirs = waiting
        .iter()
        .find(|job| job["owner"] == format!("discord-{SOMEONE_ELSE}"))
        .expect("the waiting job is not listed");
    let (output, stdout, stderr) = admin(&["cancel", theirs["id"].as_str().unwrap()]);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("nothing charged"), "{stdout}");
    bot.bedrock.script(Behaviour::Delay(Duration::ZERO));

    // Their day was not charged; PERSON's was, and starts again when the operator says so.
    let quota = |user: u64| {
        let bot = &bot;
        async move {
            let me = bot.private_answer(&bot.command(user, "me", json!([]), &[]).await).await;
            me["embeds"][0]["fields"][0]["value"].as_str().unwrap_or_default().to_string()
        }
    };
    // Cancelled from another process, the job leaves when its turn comes, and is refunded then.
    let mut theirs_now = String::new();
    for _ in 0..100 {
        theirs_now = quota(SOMEONE_ELSE).await;
        if theirs_now.starts_with("100 of 100") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(theirs_now.starts_with("100 of 100"), "the cancelled job was charged: {theirs_now}");
    assert!(
        bot.discord.channel_messages(CHANNEL_ID).iter().all(|message| !message.to_string().contains("the waiting one")),
        "the cancelled job was drawn"
    );
    let (output, stdout, stderr) = admin(&["reset-budget", &format!("discord:{PERSON}")]);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains(&format!("discord-{PERSON}")), "{stdout}");
    let after = quota(PERSON).await;
    assert!(after.starts_with("100 of 100") && after.contains("$5.00 of today's $5.00"), "{after}");
}
