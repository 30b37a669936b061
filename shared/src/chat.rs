//! Chat: the modes people talk to Atelier in, and the model behind them.
//!
//! History belongs to the caller (the bot keeps it in a Discord thread, the web app in its
//! session store); every call gets the turns so far and streams back the reply.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::{Invalid, Result};
use crate::images::CheckedImage;

/// The longest single chat message we accept.
pub const MAX_MESSAGE_CHARACTERS: usize = 8_000;

/// What the assistant is for in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChatMode {
    /// Improves a prompt by asking one question at a time.
    PromptCoach,
    /// Suggests ideas for pictures.
    IdeaGenerator,
    /// Answers questions about Bedrock's image models and their settings.
    ModelExpert,
    /// A general assistant.
    #[default]
    Assistant,
}

impl ChatMode {
    pub const ALL: [Self; 4] = [Self::PromptCoach, Self::IdeaGenerator, Self::ModelExpert, Self::Assistant];

    /// Short names people type for the modes.
    pub const ALIASES: [(&'static str, Self); 3] =
        [("coach", Self::PromptCoach), ("ideas", Self::IdeaGenerator), ("expert", Self::ModelExpert)];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PromptCoach => "prompt-coach",
            Self::IdeaGenerator => "idea-generator",
            Self::ModelExpert => "model-expert",
            Self::Assistant => "assistant",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::PromptCoach => "Prompt coach",
            Self::IdeaGenerator => "Idea generator",
            Self::ModelExpert => "Image-model expert",
            Self::Assistant => "Assistant",
        }
    }
}

impl fmt::Display for ChatMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for ChatMode {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        crate::request::contract::mode_word(text, &Self::ALL, &Self::ALIASES, Self::as_str).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|mode| mode.as_str()).collect();
            Invalid::new(format!("`{text}` is not a chat mode: use one of {}", names.join(", ")))
        })
    }
}

/// Who said a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    User,
    Assistant,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTurn {
    pub speaker: Speaker,
    pub text: String,
}

/// A checked user message, with an image when one is attached.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    text: String,
    image: Option<CheckedImage>,
}

impl ChatMessage {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new("the message is empty: write something to send"));
        }
        // Counted as sent, blanks around it included, so the API's document can state the limit.
        let characters = text.chars().count();
        if characters > MAX_MESSAGE_CHARACTERS {
            return Err(Invalid::new(format!(
                "the message is {characters} characters long; shorten it to at most {MAX_MESSAGE_CHARACTERS}"
            )));
        }
        Ok(Self { text: trimmed.to_string(), image: None })
    }

    /// Attaches an image for the model to look at.
    pub fn with_image(self, image: CheckedImage) -> Self {
        Self { image: Some(image), ..self }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn image(&self) -> Option<&CheckedImage> {
        self.image.as_ref()
    }
}

/// How many tokens a reply took, as the model reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// Why a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// The reply reached the length limit.
    MaxTokens,
    /// A guardrail or content filter stopped the reply.
    Filtered,
}

/// A piece of a streamed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// More text of the reply.
    Text(String),
    /// The reply is over; the usage is there when the model reported it.
    Finished { stop_reason: StopReason, usage: Option<TokenUsage> },
}

/// A streamed reply.
pub type ChatStream = BoxStream<'static, Result<ChatEvent>>;

/// A conversational model.
#[async_trait]
pub trait ChatModel: Send + Sync + 'static {
    /// A name for logs and for labelling replies (`demo` replies are labelled as such).
    fn name(&self) -> String;

    /// Starts a reply to `message` after `history`, in `mode`.
    async fn reply(&self, mode: ChatMode, history: &[ChatTurn], message: &ChatMessage) -> Result<ChatStream>;

    /// Four prompts that would draw something like `image`.
    async fn describe(&self, image: &CheckedImage) -> Result<Vec<String>>;
}

/// How many prompt suggestions `describe` gives.
pub const DESCRIBE_SUGGESTIONS: usize = 4;

/// The demo chat: answers from local rules, so conversations can be tried with no model.
#[derive(Debug, Default, Clone)]
pub struct DemoChat;

#[async_trait]
impl ChatModel for DemoChat {
    fn name(&self) -> String {
        "demo".into()
    }

    async fn reply(&self, mode: ChatMode, history: &[ChatTurn], message: &ChatMessage) -> Result<ChatStream> {
        let mut text = demo_reply(mode, history, message.as_str());
        if let Some(image) = message.image() {
            text.push_str(&format!(" (I cannot look at the {} image you attached without a model.)", image.size()));
        }
        // Stream word by word, as a real model would, so the streaming paths get exercised.
        let mut events: Vec<Result<ChatEvent>> = Vec::new();
        for (index, word) in text.split(' ').enumerate() {
            let piece = if index == 0 { word.to_string() } else { format!(" {word}") };
            events.push(Ok(ChatEvent::Text(piece)));
        }
        events.push(Ok(ChatEvent::Finished { stop_reason: StopReason::EndTurn, usage: None }));
        Ok(Box::pin(futures::stream::iter(events)))
    }

    async fn describe(&self, image: &CheckedImage) -> Result<Vec<String>> {
        // Without a model the best honest description is of the colours and the shape.
        let image = image.clone();
        let (colour, shape) = tokio::task::spawn_blocking(move || {
            let pixels = image.decode()?;
            let tiny = pixels.resize_exact(1, 1, ::image::imageops::FilterType::Triangle).to_rgb8();
            let shape = match pixels.width().cmp(&pixels.height()) {
                std::cmp::Ordering::Greater => "a wide",
                std::cmp::Ordering::Less => "a tall",
                std::cmp::Ordering::Equal => "a square",
            };
            Ok::<_, crate::Error>((colour_name(tiny.get_pixel(0, 0).0), shape))
        })
        .await
        .map_err(|error| crate::Error::operator("looking at an image", error))??;
        Ok(vec![
            format!("{shape} abstract picture in soft {colour} tones, gentle gradients, glowing light"),
            format!("{shape} dreamy landscape washed in {colour}, hazy atmosphere, cinematic"),
            format!("{shape} minimalist poster, {colour} palette, bokeh lights, clean composition"),
            format!("{shape} watercolour painting dominated by {colour}, soft edges, paper texture"),
        ])
    }
}

/// A plain colour name for an average colour.
fn colour_name([red, green, blue]: [u8; 3]) -> &'static str {
    let (red, green, blue) = (i32::from(red), i32::from(green), i32::from(blue));
    let brightest = red.max(green).max(blue);
    if brightest < 60 {
        return "dark";
    }
    if red.max(green).max(blue) - red.min(green).min(blue) < 25 {
        return if brightest > 200 { "white" } else { "grey" };
    }
    match (red == brightest, green == brightest, blue == brightest) {
        (true, _, _) if green > blue + 40 => "orange",
        (true, _, _) if blue > green + 40 => "magenta",
        (true, _, _) => "red",
        (_, true, _) if blue > red + 40 => "teal",
        (_, true, _) => "green",
        _ if red > green + 40 => "violet",
        _ => "blue",
    }
}

fn demo_reply(mode: ChatMode, history: &[ChatTurn], message: &str) -> String {
    let turn = history.iter().filter(|turn| turn.speaker == Speaker::User).count() + 1;
    match mode {
        ChatMode::PromptCoach => {
            let findings = crate::checker::local_findings(message);
            match findings.missing.first() {
                Some(missing) => format!(
                    "(Demo coach, turn {turn}.) Good start. One question: {} Add that and send the prompt again.",
                    missing.question
                ),
                None => format!(
                    "(Demo coach, turn {turn}.) That prompt names a subject, a style, the light and the framing. \
                     Try it in the studio: \"{message}\""
                ),
            }
        }
        ChatMode::IdeaGenerator => {
            let subject = message.trim_end_matches(['.', '!', '?']);
            format!(
                "(Demo ideas.) Three pictures from \"{subject}\": 1. {subject} at golden hour, wide shot, film grain. \
                 2. {subject} as a paper-cut diorama, soft studio light. 3. {subject} in a rainy neon street, \
                 reflections, cinematic."
            )
        }
        ChatMode::ModelExpert => "(Demo expert.) No Bedrock model is configured, so this answer comes from \
             Atelier's notes: SDXL takes sizes from a fixed list and weighted prompts; Titan and Nova Canvas \
             take up to 512 and 1,024 characters and can inpaint, outpaint and make variations; the Stable Image \
             models choose an aspect ratio rather than pixels. Configure Bedrock for real answers."
            .to_string(),
        ChatMode::Assistant => format!(
            "(Demo assistant.) No chat model is configured, so I can only echo: you said \"{message}\". \
             Configure Bedrock (ATELIER_ENGINE=bedrock) to talk to Claude."
        ),
    }
}
