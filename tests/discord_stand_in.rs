//! The Discord stand-in itself, driven by a plain serenity client (not the bot crate) configured
//! as `bot/src/client.rs` configures it: REST through `HttpBuilder::proxy` with the rate limiter
//! off, and the gateway URL set on `Client::ws_url`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use serenity::all::{
    ChannelId, ChannelType, Client, ClientBuilder, CommandInteraction, ComponentInteraction, Context, CreateActionRow,
    CreateAttachment, CreateAutocompleteResponse, CreateButton, CreateEmbed, CreateInputText,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateMessage,
    CreateModal, CreateThread, EditInteractionResponse, EditMessage, EventHandler, GatewayIntents, GetMessages, Guild,
    Http, HttpBuilder, InputTextStyle, Interaction, Message, MessageId, ModalInteraction, Ready, ResolvedValue,
    ResumedEvent, ShardManager, UserId,
};
use serenity::async_trait;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::support::discord::{
    APPLICATION_ID, BOT_USER_ID, CHANNEL_ID, DEFAULT_ATTACHMENT_SIZE_LIMIT, DiscordStandIn, GUILD_ID,
};

const TOKEN: &str = "stand-in-bot-token";

/// What the client's event handler saw.
enum Seen {
    Ready(Box<Ready>),
    Guild(Box<Guild>),
    Interaction(Box<Interaction>),
    Message(Box<Message>),
    Resumed,
}

struct Recorder {
    seen: mpsc::UnboundedSender<Seen>,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn ready(&self, _context: Context, ready: Ready) {
        let _ = self.seen.send(Seen::Ready(Box::new(ready)));
    }

    async fn guild_create(&self, _context: Context, guild: Guild, _is_new: Option<bool>) {
        let _ = self.seen.send(Seen::Guild(Box::new(guild)));
    }

    async fn interaction_create(&self, _context: Context, interaction: Interaction) {
        let _ = self.seen.send(Seen::Interaction(Box::new(interaction)));
    }

    async fn message(&self, _context: Context, message: Message) {
        let _ = self.seen.send(Seen::Message(Box::new(message)));
    }

    async fn resume(&self, _context: Context, _event: ResumedEvent) {
        let _ = self.seen.send(Seen::Resumed);
    }
}

/// A serenity client connected to the stand-in, and what its handler sees.
struct Bot {
    http: Arc<Http>,
    seen: mpsc::UnboundedReceiver<Seen>,
    shard_manager: Arc<ShardManager>,
    task: JoinHandle<Result<(), serenity::Error>>,
}

impl Bot {
    async fn connect(discord: &DiscordStandIn, token: &str, intents: GatewayIntents) -> Self {
        let http = HttpBuilder::new(token).proxy(discord.url()).ratelimiter_disabled(true).build();
        let (sender, seen) = mpsc::unbounded_channel();
        let mut client: Client =
            ClientBuilder::new_with_http(http, intents).event_handler(Recorder { seen: sender }).await.unwrap();
        *client.ws_url.lock().await = discord.gateway_url();
        let http = client.http.clone();
        let shard_manager = client.shard_manager.clone();
        let task = tokio::spawn(async move { client.start().await });
        Self { http, seen, shard_manager, task }
    }

    async fn ready(discord: &DiscordStandIn) -> Self {
        let mut bot = Self::connect(discord, TOKEN, GatewayIntents::non_privileged()).await;
        discord.wait_until_ready().await;
        bot.next("READY", |seen| matches!(seen, Seen::Ready(_)).then_some(())).await;
        bot
    }

    /// The next event `pick` accepts (others are skipped); fails after 20 s.
    async fn next<T>(&mut self, what: &str, mut pick: impl FnMut(Seen) -> Option<T>) -> T {
        let wait = async {
            loop {
                let seen = self.seen.recv().await.expect("the client stopped");
                if let Some(found) = pick(seen) {
                    return found;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("the client never saw {what} within 20 s"))
    }

    async fn command(&mut self, name: &str) -> CommandInteraction {
        self.next(&format!("the /{name} command"), |seen| match seen {
            Seen::Interaction(interaction) => interaction.command().filter(|command| command.data.name == name),
            _ => None,
        })
        .await
    }

    async fn component(&mut self, custom_id: &str) -> ComponentInteraction {
        self.next(&format!("a press of {custom_id}"), |seen| match seen {
            Seen::Interaction(interaction) => {
                interaction.message_component().filter(|component| component.data.custom_id == custom_id)
            }
            _ => None,
        })
        .await
    }

    async fn modal(&mut self, custom_id: &str) -> ModalInteraction {
        self.next(&format!("the {custom_id} modal"), |seen| match seen {
            Seen::Interaction(interaction) => {
                interaction.modal_submit().filter(|modal| modal.data.custom_id == custom_id)
            }
            _ => None,
        })
        .await
    }

    async fn message_containing(&mut self, text: &str) -> Message {
        self.next(&format!("a message containing {text:?}"), |seen| match seen {
            Seen::Message(message) if message.content.contains(text) => Some(*message),
            _ => None,
        })
        .await
    }

    async fn stop(self) {
        self.shard_manager.shutdown_all().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(width, height, image::Rgb([200, 120, 40]))
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    bytes
}

async fn download(url: &str) -> (u16, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
}

/// The status and Discord error code of a failed serenity call.
fn discord_error(error: serenity::Error) -> (u16, isize) {
    match error {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(response)) => {
            (response.status_code.as_u16(), response.error.code)
        }
        other => panic!("expected Discord to refuse the request, got {other:?}"),
    }
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_string()
}

fn channel() -> ChannelId {
    ChannelId::new(CHANNEL_ID.parse().unwrap())
}

#[tokio::test]
async fn a_serenity_client_identifies_gets_ready_and_its_guild_and_heartbeats() {
    let discord = DiscordStandIn::start().await;
    let mut bot = Bot::connect(&discord, TOKEN, GatewayIntents::non_privileged()).await;
    discord.wait_until_ready().await;

    let ready = bot.next("READY", |seen| if let Seen::Ready(ready) = seen { Some(ready) } else { None }).await;
    assert_eq!(ready.user.id.to_string(), BOT_USER_ID);
    assert!(ready.user.bot);
    assert_eq!(ready.application.id.to_string(), APPLICATION_ID);
    assert_eq!(ready.resume_gateway_url, discord.gateway_url());
    assert_eq!(ready.guilds[0].id.to_string(), GUILD_ID);
    let guild = bot.next("GUILD_CREATE", |seen| if let Seen::Guild(guild) = seen { Some(guild) } else { None }).await;
    assert_eq!(guild.id.to_string(), GUILD_ID);
    assert_eq!(guild.channels[&channel()].kind, ChannelType::Text);
    assert_eq!(discord.identify_count(), 1);
    assert_eq!(discord.resume_count(), 0);

    // serenity asks where the gateway is before connecting, with the bot token.
    let gateway = discord.wait_for_request("GET /gateway", |request| request.path == "/api/v10/gateway").await;
    assert_eq!((gateway.method.as_str(), gateway.status), ("GET", 200));
    assert_eq!(gateway.authorization.as_deref(), Some("Bot stand-in-bot-token"));

    // HELLO asked for a heartbeat every second, and each is acknowledged (or serenity would reconnect).
    for _ in 0..100 {
        if discord.heartbeat_count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(discord.heartbeat_count() >= 2, "the client sent {} heartbeats", discord.heartbeat_count());
    assert_eq!(discord.identify_count(), 1, "an unacknowledged heartbeat would have made the client reconnect");

    let me = bot.http.get_current_user().await.unwrap();
    assert_eq!(me.id.to_string(), BOT_USER_ID);
    bot.stop().await;
}

#[tokio::test]
async fn a_deferred_interaction_is_answered_with_a_png_and_a_follow_up_and_only_once() {
    let discord = DiscordStandIn::start().await;
    let mut bot = Bot::ready(&discord).await;
    let painter = DiscordStandIn::user(4242, "Painter");
    let sketch_bytes = png(4, 3);
    let sketch = discord.attachment("my sketch.png", "image/png", sketch_bytes.clone());
    let options = json!([
        { "name": "prompt", "type": 3, "value": "a cat" },
        { "name": "sketch", "type": 11, "value": sketch["id"] }
    ]);
    let interaction = discord.slash_command(&painter, "imagine", options, std::slice::from_ref(&sketch));
    let interaction_id = id(&interaction);
    discord.dispatch_interaction(interaction).await;

    let command = bot.command("imagine").await;
    assert_eq!(command.id.to_string(), interaction_id);
    assert_eq!(command.user.id.get(), 4242, "the member's user is the invoking user");
    assert_eq!(command.guild_id.map(|guild| guild.to_string()).as_deref(), Some(GUILD_ID));
    assert_eq!(u64::from(command.attachment_size_limit), DEFAULT_ATTACHMENT_SIZE_LIMIT);
    let options = command.data.options();
    assert!(matches!(options[0].value, ResolvedValue::String("a cat")));
    let ResolvedValue::Attachment(upload) = options[1].value else { panic!("the sketch option did not resolve") };
    assert_eq!(upload.filename, "my_sketch.png", "Discord sanitises filenames");
    assert_eq!((upload.width, upload.height), (Some(4), Some(3)));
    assert_eq!(download(&upload.url).await, (200, sketch_bytes));

    command.defer(&bot.http).await.unwrap();
    let thinking = discord.interaction_original(&interaction_id).expect("a deferral makes a thinking message");
    assert_eq!(thinking["flags"], 128, "LOADING");
    let defer = discord.wait_for_request("the deferral", |request| request.path.ends_with("/callback")).await;
    assert_eq!((defer.status, defer.body["type"].as_u64()), (204, Some(5)));

    let picture = png(8, 8);
    let edit = EditInteractionResponse::new()
        .content("Here is your cat")
        .new_attachment(CreateAttachment::bytes(picture.clone(), "cat.png"));
    let returned = command.edit_response(&bot.http, edit).await.unwrap();
    let patch = discord
        .wait_for_request("the edit of @original", |request| {
            request.method == "PATCH" && request.path.ends_with("/messages/@original")
        })
        .await;
    assert_eq!(patch.status, 200);
    assert_eq!(patch.path, format!("/api/v10/webhooks/{APPLICATION_ID}/{}/messages/@original", command.token));
    assert_eq!(patch.body["content"], "Here is your cat");
    assert_eq!(patch.files.len(), 1);
    assert_eq!(patch.files[0].field, "files[0]");
    assert_eq!(patch.files[0].filename, "cat.png");
    assert_eq!(patch.files[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(patch.files[0].bytes, picture);

    let original = discord.interaction_original(&interaction_id).unwrap();
    assert_eq!(original["id"], returned.id.to_string());
    assert_eq!(original["content"], "Here is your cat");
    assert_eq!(original["flags"], 0, "no longer thinking");
    assert_eq!(original["type"], 20, "a response to a slash command");
    assert_eq!(original["interaction_metadata"]["id"], interaction_id.as_str());
    assert_eq!(original["attachments"][0]["filename"], "cat.png");
    assert_eq!(original["attachments"][0]["width"], 8);
    assert_eq!(download(original["attachments"][0]["url"].as_str().unwrap()).await, (200, picture));
    assert_eq!(returned.attachments[0].filename, "cat.png");
    let in_channel = discord.channel_messages(CHANNEL_ID);
    assert_eq!(in_channel.len(), 1);
    assert_eq!(in_channel[0]["id"], original["id"]);

    let followup = CreateInteractionResponseFollowup::new().content("Want another?").ephemeral(true);
    let sent = command.create_followup(&bot.http, followup).await.unwrap();
    let followups = discord.interaction_followups(&interaction_id);
    assert_eq!(followups.len(), 1);
    assert_eq!(followups[0]["id"], sent.id.to_string());
    assert_eq!(followups[0]["flags"], 64, "ephemeral");
    assert_eq!(followups[0]["interaction_metadata"]["original_response_message_id"], original["id"]);
    assert_eq!(discord.channel_messages(CHANNEL_ID).len(), 1, "an ephemeral follow-up is not in the channel");

    let again = CreateInteractionResponse::Message(CreateInteractionResponseMessage::new().content("again"));
    let refused = command.create_response(&bot.http, again).await.unwrap_err();
    assert_eq!(discord_error(refused), (400, 40060));
    bot.stop().await;
}

#[tokio::test]
async fn dispatches_and_requests_are_timed_and_the_log_leaves_out_file_bytes() {
    let discord = DiscordStandIn::start().await;
    let mut bot = Bot::ready(&discord).await;
    let interaction = discord.slash_command(&DiscordStandIn::user(4343, "Timer"), "imagine", json!([]), &[]);
    let interaction_id = id(&interaction);
    assert_eq!(discord.interaction_sent_at(&interaction_id), None, "not sent yet");
    let before = std::time::Instant::now();
    discord.dispatch_interaction(interaction).await;
    let command = bot.command("imagine").await;
    let sent = discord.interaction_sent_at(&interaction_id).expect("the dispatch's sending is recorded");
    assert!(sent >= before);
    command.defer(&bot.http).await.unwrap();
    let picture = png(8, 8);
    let edit = EditInteractionResponse::new().new_attachment(CreateAttachment::bytes(picture.clone(), "cat.png"));
    command.edit_response(&bot.http, edit).await.unwrap();
    let log = discord.request_log();
    let callback = log.iter().find(|request| request.path.ends_with("/callback")).unwrap();
    assert!(callback.received_at >= sent);
    assert_eq!((callback.status, callback.body["type"].as_u64(), callback.file_count), (204, Some(5), 0));
    let upload = log.iter().find(|request| request.method == "PATCH").unwrap();
    assert_eq!((upload.status, upload.file_count, upload.file_bytes), (200, 1, picture.len()));
    assert!(upload.received_at >= callback.received_at);
    assert_eq!(discord.requests().len(), log.len(), "the same requests as in full");
    bot.stop().await;
}

#[tokio::test]
async fn after_a_deferral_the_first_follow_up_replaces_the_thinking_message() {
    let discord = DiscordStandIn::start().await;
    let mut bot = Bot::ready(&discord).await;
    let painter = DiscordStandIn::user(4242, "Painter");
    let interaction =
        discord.slash_command(&painter, "check", json!([{ "name": "prompt", "type": 3, "value": "a cat" }]), &[]);
    let interaction_id = id(&interaction);
    discord.dispatch_interaction(interaction).await;
    let command = bot.command("check").await;

    command.defer_ephemeral(&bot.http).await.unwrap();
    let answer = command
        .create_followup(&bot.http, CreateInteractionResponseFollowup::new().content("Looks fine"))
        .await
        .unwrap();
    let original = discord.interaction_original(&interaction_id).unwrap();
    assert_eq!(answer.id.to_string(), original["id"].as_str().unwrap());
    assert_eq!(original["content"], "Looks fine");
    assert_eq!(original["flags"], 64, "still ephemeral, and no longer loading");
    assert!(discord.interaction_followups(&interaction_id).is_empty());
    assert!(discord.channel_messages(CHANNEL_ID).is_empty(), "ephemeral messages are not in the channel");
    bot.stop().await;
}

#[tokio::test]
async fn channel_messages_threads_dms_and_user_messages_behave_as_on_discord() {
    let discord = DiscordStandIn::start().await;
    let mut bot = Bot::ready(&discord).await;
    let shared_http = bot.http.clone();
    let http: &Http = &shared_http;

    let cover = png(2, 2);
    let post = CreateMessage::new()
        .content("A new gallery is open")
        .embed(CreateEmbed::new().title("Gallery").image("attachment://cover.png"))
        .add_file(CreateAttachment::bytes(cover.clone(), "cover.png"));
    let sent = channel().send_message(http, post).await.unwrap();
    let create = discord
        .wait_for_request("the channel message", |request| {
            request.method == "POST" && request.path == format!("/api/v10/channels/{CHANNEL_ID}/messages")
        })
        .await;
    assert_eq!((create.status, create.files.len()), (200, 1));
    // The embed shows the file, so Discord lists it in the embed rather than among attachments.
    assert!(sent.attachments.is_empty());
    let image = sent.embeds[0].image.as_ref().expect("the embed image");
    assert_eq!((image.width, image.height), (Some(2), Some(2)));
    assert_eq!(download(&image.url).await, (200, cover));
    // A bot sees its own messages over the gateway too.
    let own = bot.message_containing("A new gallery is open").await;
    assert_eq!(own.author.id.to_string(), BOT_USER_ID);
    assert_eq!(own.guild_id.map(|guild| guild.to_string()).as_deref(), Some(GUILD_ID));

    let thread = channel().create_thread_from_message(http, sent.id, CreateThread::new("Gallery talk")).await.unwrap();
    assert_eq!(thread.id.get(), sent.id.get(), "a thread from a message has the message's id");
    assert_eq!(thread.kind, ChannelType::PublicThread);
    assert_eq!(thread.parent_id, Some(channel()));
    let threads = discord.threads();
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0]["name"], "Gallery talk");
    let starter = discord.message(&sent.id.to_string()).unwrap();
    assert_eq!(starter["flags"].as_u64().unwrap() & 32, 32, "HAS_THREAD");
    assert_eq!(starter["thread"]["id"], sent.id.to_string());
    let again = channel().create_thread_from_message(http, sent.id, CreateThread::new("Twice")).await.unwrap_err();
    assert_eq!(discord_error(again), (400, 160004));
    thread.id.say(http, "First!").await.unwrap();
    let in_thread = discord.channel_messages(&thread.id.to_string());
    assert_eq!(in_thread.len(), 1);
    assert_eq!(in_thread[0]["content"], "First!");

    // Without the MESSAGE_CONTENT intent, only messages that mention the bot keep their content.
    let painter = DiscordStandIn::user(4242, "Painter");
    discord.dispatch_message(discord.user_message(CHANNEL_ID, &painter, "just chatting")).await;
    let plain = bot
        .next("the user's first message", |seen| match seen {
            Seen::Message(message) if message.author.id.get() == 4242 => Some(message),
            _ => None,
        })
        .await;
    assert_eq!(plain.content, "");
    let mention = discord.user_message(CHANNEL_ID, &painter, &format!("<@{BOT_USER_ID}> draw a fox"));
    assert_eq!(mention["mentions"][0]["id"], BOT_USER_ID);
    discord.dispatch_message(mention).await;
    let addressed = bot.message_containing("draw a fox").await;
    assert_eq!(addressed.mentions[0].id.to_string(), BOT_USER_ID);

    // History through REST: newest first, `limit` honoured.
    let latest = channel().messages(http, GetMessages::new().limit(2)).await.unwrap();
    assert_eq!(latest.len(), 2);
    assert!(latest[0].content.ends_with("draw a fox"));
    assert_eq!(latest[1].content, "just chatting");
    let listing = discord
        .wait_for_request("the history", |request| request.method == "GET" && request.path.ends_with("/messages"))
        .await;
    assert!(listing.query.as_deref().is_some_and(|query| query.contains("limit=2")), "{:?}", listing.query);
    let older = channel().messages(http, GetMessages::new().before(latest[1].id).limit(10)).await.unwrap();
    assert_eq!(older.iter().map(|message| message.id).collect::<Vec<MessageId>>(), [sent.id]);
    assert_eq!(discord.channel_messages(CHANNEL_ID).len(), 3);

    // The bot may neither edit nor delete what people wrote.
    let edit = channel().edit_message(http, latest[0].id, EditMessage::new().content("changed")).await.unwrap_err();
    assert_eq!(discord_error(edit), (403, 50005));
    let delete = channel().delete_message(http, latest[0].id).await.unwrap_err();
    assert_eq!(discord_error(delete), (403, 50013));
    channel().delete_message(http, sent.id).await.unwrap();
    assert!(discord.message(&sent.id.to_string()).is_none());

    let dm = UserId::new(4242).create_dm_channel(http).await.unwrap();
    assert_eq!(dm.kind, ChannelType::Private);
    assert_eq!(dm.recipient.id.get(), 4242);
    dm.id.say(http, "Your image is ready").await.unwrap();
    assert_eq!(discord.channel_messages(&dm.id.to_string())[0]["content"], "Your image is ready");
    bot.stop().await;
}

#[tokio::test]
async fn buttons_modals_and_autocomplete_round_trip() {
    let discord = DiscordStandIn::start().await;
    let mut bot = Bot::ready(&discord).await;
    let shared_http = bot.http.clone();
    let http: &Http = &shared_http;
    let painter = DiscordStandIn::user(4242, "Painter");

    let buttons = CreateActionRow::Buttons(vec![
        CreateButton::new("reroll:1").label("Reroll"),
        CreateButton::new("describe:1").label("Describe"),
    ]);
    let post =
        channel().send_message(http, CreateMessage::new().content("A cat").components(vec![buttons])).await.unwrap();
    let posted = discord.message(&post.id.to_string()).unwrap();
    assert_eq!(posted["components"][0]["components"][0]["custom_id"], "reroll:1");

    // UPDATE_MESSAGE (7) edits the message the button is on.
    let press = discord.button_press(&painter, "reroll:1", &posted);
    let press_id = id(&press);
    discord.dispatch_interaction(press).await;
    let component = bot.component("reroll:1").await;
    assert_eq!(component.message.id, post.id);
    let update = CreateInteractionResponseMessage::new().content("Rerolling…").components(vec![]);
    component.create_response(http, CreateInteractionResponse::UpdateMessage(update)).await.unwrap();
    let updated = discord.message(&post.id.to_string()).unwrap();
    assert_eq!(updated["content"], "Rerolling…");
    assert_eq!(updated["components"], json!([]));
    assert!(updated["edited_timestamp"].is_string());
    assert_eq!(discord.interaction_original(&press_id).unwrap()["id"], post.id.to_string());

    // A modal (9), then its submission, answered ephemerally.
    let press = discord.button_press(&painter, "describe:1", &posted);
    let press_id = id(&press);
    discord.dispatch_interaction(press).await;
    let component = bot.component("describe:1").await;
    let field = CreateInputText::new(InputTextStyle::Short, "Prompt", "prompt");
    let modal = CreateModal::new("describe", "Describe it").components(vec![CreateActionRow::InputText(field)]);
    component.create_response(http, CreateInteractionResponse::Modal(modal)).await.unwrap();
    let callback = discord.interaction_callback(&press_id).unwrap();
    assert_eq!((callback["type"].as_u64(), callback["data"]["custom_id"].as_str()), (Some(9), Some("describe")));

    let submit = discord.modal_submit(&painter, "describe", &[("prompt", "a red fox")]);
    let submit_id = id(&submit);
    discord.dispatch_interaction(submit).await;
    let submitted = bot.modal("describe").await;
    let serenity::all::ActionRowComponent::InputText(input) = &submitted.data.components[0].components[0] else {
        panic!("the modal's field is not a text input")
    };
    assert_eq!((input.custom_id.as_str(), input.value.as_deref()), ("prompt", Some("a red fox")));
    assert_eq!(submitted.message.as_ref().map(|message| message.id), Some(post.id), "opened from the button's message");
    let answer = CreateInteractionResponseMessage::new().content("Noted").ephemeral(true);
    submitted.create_response(http, CreateInteractionResponse::Message(answer)).await.unwrap();
    let noted = discord.interaction_original(&submit_id).unwrap();
    assert_eq!((noted["content"].as_str(), noted["flags"].as_u64()), (Some("Noted"), Some(64)));
    assert_eq!(noted["interaction_metadata"]["triggering_interaction_metadata"]["id"], press_id.as_str());
    assert!(!discord.channel_messages(CHANNEL_ID).iter().any(|message| message["content"] == "Noted"));

    // Autocomplete (8): the option being typed is marked focused.
    let typing = discord.autocomplete(&painter, "imagine", json!([{ "name": "style", "type": 3, "value": "wat" }]));
    let typing_id = id(&typing);
    assert_eq!(typing["data"]["options"][0]["focused"], true);
    discord.dispatch_interaction(typing).await;
    let autocomplete = bot
        .next("the autocomplete", |seen| match seen {
            Seen::Interaction(interaction) => interaction.autocomplete(),
            _ => None,
        })
        .await;
    assert_eq!(autocomplete.data.autocomplete().map(|focused| focused.value), Some("wat"));
    let choices = CreateAutocompleteResponse::new().add_string_choice("Watercolour", "watercolour");
    autocomplete.create_response(http, CreateInteractionResponse::Autocomplete(choices)).await.unwrap();
    let callback = discord.interaction_callback(&typing_id).unwrap();
    assert_eq!(callback["type"], 8);
    assert_eq!(callback["data"]["choices"][0]["value"], "watercolour");

    // Uploads above the interaction's attachment_size_limit are refused with 413 (40005).
    discord.set_attachment_size_limit(1000);
    let interaction = discord.slash_command(&painter, "imagine", json!([]), &[]);
    assert_eq!(interaction["attachment_size_limit"], 1000);
    discord.dispatch_interaction(interaction).await;
    let command = bot.command("imagine").await;
    assert_eq!(command.attachment_size_limit, 1000);
    command.defer(http).await.unwrap();
    let too_big = EditInteractionResponse::new().new_attachment(CreateAttachment::bytes(vec![0; 2000], "big.bin"));
    let refused = command.edit_response(http, too_big).await.unwrap_err();
    assert_eq!(discord_error(refused), (413, 40005));
    bot.stop().await;
}

#[tokio::test]
async fn a_dropped_gateway_is_resumed_and_what_was_missed_is_replayed() {
    let discord = DiscordStandIn::start().await;
    let mut bot = Bot::ready(&discord).await;
    let painter = DiscordStandIn::user(4242, "Painter");

    discord.drop_gateway().await;
    // Sent while the connection is down: kept in the session and replayed on RESUME.
    let missed = discord.user_message(CHANNEL_ID, &painter, &format!("<@{BOT_USER_ID}> sent while you were away"));
    discord.dispatch_message(missed).await;
    // Discord replays the missed dispatches before RESUMED; serenity hands each to its own task,
    // so the handler may see them in either order.
    let (mut resumed, mut replayed) = (false, None);
    while !resumed || replayed.is_none() {
        bot.next("RESUMED and the replayed message", |seen| match seen {
            Seen::Resumed => {
                resumed = true;
                Some(())
            }
            Seen::Message(message) if message.content.contains("sent while you were away") => {
                replayed = Some(message);
                Some(())
            }
            _ => None,
        })
        .await;
    }
    assert_eq!(replayed.unwrap().author.id.get(), 4242);
    assert_eq!(discord.resume_count(), 1);
    assert_eq!(discord.identify_count(), 1, "the client resumed rather than identifying again");

    // The resumed session goes on.
    let interaction = discord.slash_command(&painter, "imagine", json!([]), &[]);
    discord.dispatch_interaction(interaction).await;
    let command = bot.command("imagine").await;
    command
        .create_response(
            &bot.http,
            CreateInteractionResponse::Message(CreateInteractionResponseMessage::new().content("Back")),
        )
        .await
        .unwrap();
    bot.stop().await;
}

#[tokio::test]
async fn an_identify_with_another_token_is_refused() {
    let discord = DiscordStandIn::start().await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/v10/users/@me", discord.url()))
        .header("Authorization", "Bot the-real-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let bot = Bot::connect(&discord, "a-stolen-token", GatewayIntents::non_privileged()).await;
    let ended = tokio::time::timeout(Duration::from_secs(20), bot.task).await.expect("the client kept running");
    assert!(ended.unwrap().is_err(), "the gateway closed with 4004 Authentication failed");
    assert_eq!(discord.identify_count(), 1);
    let refused = discord.requests().into_iter().find(|request| request.path == "/api/v10/gateway").unwrap();
    assert_eq!(refused.status, 200, "Get Gateway needs no token");
}

#[tokio::test]
async fn scripted_faults_answer_as_discord_documents() {
    let discord = DiscordStandIn::start().await;
    let client = reqwest::Client::new();
    let messages = format!("{}/api/v10/channels/{CHANNEL_ID}/messages", discord.url());

    discord.fail_next("POST", "/messages", 429, 1);
    let limited =
        client.post(&messages).header("Authorization", "Bot t").json(&json!({ "content": "hi" })).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let header = |name: &str| limited.headers().get(name).map(|value| value.to_str().unwrap().to_string());
    assert_eq!(header("retry-after").as_deref(), Some("1"));
    assert_eq!(header("x-ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(header("x-ratelimit-scope").as_deref(), Some("user"));
    assert!(header("x-ratelimit-bucket").is_some() && header("x-ratelimit-reset-after").is_some());
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["retry_after"].as_f64(), Some(0.1));
    assert_eq!(body["global"], false);
    assert_eq!(body["message"], "You are being rate limited.");

    let accepted =
        client.post(&messages).header("Authorization", "Bot t").json(&json!({ "content": "hi" })).send().await.unwrap();
    assert_eq!(accepted.status(), 200, "the fault was used up");
    assert_eq!(accepted.json::<Value>().await.unwrap()["content"], "hi");

    discord.fail_next("*", "/channels/", 502, 1);
    let failed = client.get(&messages).header("Authorization", "Bot t").send().await.unwrap();
    assert_eq!(failed.status(), 502);
    assert_eq!(failed.json::<Value>().await.unwrap(), json!({ "message": "502: Bad Gateway", "code": 0 }));

    let unknown = client
        .get(format!("{}/api/v10/guilds/{GUILD_ID}/roles", discord.url()))
        .header("Authorization", "Bot t")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap(), json!({ "message": "404: Not Found", "code": 0 }));
    let other_token = client.get(&messages).header("Authorization", "Bot other").send().await.unwrap();
    assert_eq!(other_token.status(), 401);

    let statuses: Vec<(String, u16)> =
        discord.requests().into_iter().map(|request| (request.method, request.status)).collect();
    let expected = [("POST", 429), ("POST", 200), ("GET", 502), ("GET", 404), ("GET", 401)];
    assert_eq!(statuses, expected.map(|(method, status)| (method.to_string(), status)));
}

#[tokio::test]
async fn expired_interaction_tokens_are_refused_like_discord_refuses_them() {
    let discord = DiscordStandIn::start().await;
    // No gateway needed: serenity's REST client alone, as the bot would call it.
    let http = HttpBuilder::new(TOKEN)
        .proxy(discord.url())
        .ratelimiter_disabled(true)
        .application_id(APPLICATION_ID.parse::<u64>().unwrap().into())
        .build();
    let painter = DiscordStandIn::user(4242, "Painter");
    let answered = discord.slash_command(&painter, "imagine", json!([]), &[]);
    let unanswered = discord.slash_command(&painter, "imagine", json!([]), &[]);
    let token = answered["token"].as_str().unwrap().to_string();
    let defer = CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new());
    http.create_interaction_response(id(&answered).parse::<u64>().unwrap().into(), &token, &defer, vec![])
        .await
        .unwrap();

    discord.expire_interaction_tokens();
    let late = EditInteractionResponse::new().content("late");
    let refused = http.edit_original_interaction_response(&token, &late, vec![]).await.unwrap_err();
    assert_eq!(discord_error(refused), (401, 50027));
    let followup = CreateInteractionResponseFollowup::new().content("late");
    assert_eq!(discord_error(http.create_followup_message(&token, &followup, vec![]).await.unwrap_err()), (401, 50027));
    let unanswered_token = unanswered["token"].as_str().unwrap();
    let too_late = http.create_interaction_response(
        id(&unanswered).parse::<u64>().unwrap().into(),
        unanswered_token,
        &defer,
        vec![],
    );
    assert_eq!(discord_error(too_late.await.unwrap_err()), (404, 10062));
    assert_eq!(discord.interaction_original(&id(&answered)).unwrap()["flags"], 128, "still thinking");

    // Interactions made after the expiry have their own 15 minutes.
    let fresh = discord.slash_command(&painter, "imagine", json!([]), &[]);
    http.create_interaction_response(
        id(&fresh).parse::<u64>().unwrap().into(),
        fresh["token"].as_str().unwrap(),
        &defer,
        vec![],
    )
    .await
    .unwrap();
}

#[test]
fn the_payloads_the_stand_in_builds_are_what_serenity_reads() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let discord = runtime.block_on(DiscordStandIn::start());
    let painter = DiscordStandIn::user(4242, "Painter");
    let user: serenity::all::User = serde_json::from_value(painter.clone()).unwrap();
    assert_eq!((user.id.get(), user.global_name.as_deref()), (4242, Some("Painter")));

    let upload = discord.attachment("photo.png", "image/png", png(3, 2));
    let attachment: serenity::all::Attachment = serde_json::from_value(upload.clone()).unwrap();
    assert_eq!((attachment.width, attachment.height, attachment.size), (Some(3), Some(2), png(3, 2).len() as u32));
    assert!(attachment.url.starts_with(&format!("{}/attachments/{}/photo.png?", discord.url(), attachment.id)));

    let command =
        discord.slash_command(&painter, "imagine", json!([{ "name": "prompt", "type": 3, "value": "x" }]), &[upload]);
    for field in [
        "member",
        "app_permissions",
        "locale",
        "guild_locale",
        "entitlements",
        "authorizing_integration_owners",
        "context",
        "channel",
    ] {
        assert!(command.get(field).is_some(), "a slash command lacks {field}");
    }
    assert_eq!((command["version"].as_u64(), command["token"].as_str().map(str::len)), (Some(1), Some(160)));
    let Interaction::Command(parsed) = serde_json::from_value(command).unwrap() else { panic!("not a command") };
    assert_eq!(parsed.data.resolved.attachments.len(), 1);
    assert_eq!(parsed.user.id.get(), 4242);

    let message = discord.user_message(CHANNEL_ID, &painter, "hello");
    let parsed: Message = serde_json::from_value(message.clone()).unwrap();
    assert_eq!((parsed.content.as_str(), parsed.author.id.get()), ("hello", 4242));

    let press = discord.button_press(&painter, "reroll:1", &message);
    assert!(matches!(serde_json::from_value(press).unwrap(), Interaction::Component(_)));
    let typing = discord.autocomplete(
        &painter,
        "imagine",
        json!([{ "name": "sub", "type": 1, "options": [{ "name": "style", "type": 3, "value": "w" }] }]),
    );
    assert_eq!(typing["data"]["options"][0]["options"][0]["focused"], true, "the innermost option is focused");
    assert!(matches!(serde_json::from_value(typing).unwrap(), Interaction::Autocomplete(_)));
    let submit = discord.modal_submit(&painter, "describe", &[("prompt", "a fox")]);
    assert!(matches!(serde_json::from_value(submit).unwrap(), Interaction::Modal(_)));
}

#[tokio::test]
async fn a_callback_with_response_returns_the_message_it_made() {
    let discord = DiscordStandIn::start().await;
    let painter = DiscordStandIn::user(4242, "Ada Lovelace");
    assert_eq!(
        (painter["username"].as_str(), painter["global_name"].as_str()),
        (Some("ada_lovelace"), Some("Ada Lovelace"))
    );
    let interaction = discord.slash_command(&painter, "imagine", json!([]), &[]);
    let callback = format!(
        "{}/api/v10/interactions/{}/{}/callback",
        discord.url(),
        id(&interaction),
        interaction["token"].as_str().unwrap()
    );
    let response = reqwest::Client::new()
        .post(format!("{callback}?with_response=true"))
        .json(&json!({ "type": 4, "data": { "content": "Drawing…" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let original = discord.interaction_original(&id(&interaction)).unwrap();
    assert_eq!(body["interaction"]["response_message_id"], original["id"]);
    assert_eq!(body["interaction"]["response_message_loading"], false);
    assert_eq!(body["resource"]["type"], 4);
    assert_eq!(body["resource"]["message"]["content"], "Drawing…");
    let recorded = discord.requests().pop().unwrap();
    assert_eq!((recorded.query.as_deref(), recorded.status), (Some("with_response=true"), 200));
    assert_eq!(recorded.authorization, None, "interaction callbacks need no bot token");
}
