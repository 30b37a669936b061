//! The prompt checker's critique: what is good about a prompt, what to improve, and an
//! improved prompt for each model family.
//!
//! With Bedrock configured a Claude model writes the critique; without it, [`LocalCritic`]
//! writes one from plain rules (does the prompt name a subject, a style, the light, the
//! framing?), labelled as such, so `atelier check` is useful offline too.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::request::Prompt;

/// An improved prompt for one model family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImprovedPrompt {
    pub family: String,
    pub prompt: String,
}

/// The structured critique of a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critique {
    pub strengths: Vec<String>,
    pub improvements: Vec<String>,
    pub suggestions: Vec<String>,
    pub improved_prompts: Vec<ImprovedPrompt>,
    pub negative_prompt_suggestions: Vec<String>,
    pub explanation: String,
    /// Who wrote the critique: a model id, or `local rules`.
    pub reviewer: String,
}

/// Writes critiques.
#[async_trait]
pub trait PromptCritic: Send + Sync + 'static {
    async fn critique(&self, prompt: &Prompt) -> Result<Critique>;
}

/// One aspect a good image prompt usually covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aspect {
    pub name: &'static str,
    /// Words that show the prompt covers it.
    pub cues: &'static [&'static str],
    /// What to ask the writer when it is missing.
    pub question: &'static str,
    /// What to add to the prompt when it is missing, as a generic example.
    pub addition: &'static str,
}

const ASPECTS: &[Aspect] = &[
    Aspect {
        name: "style",
        cues: &[
            "photo",
            "painting",
            "illustration",
            "render",
            "watercolor",
            "watercolour",
            "oil",
            "sketch",
            "anime",
            "cinematic",
            "3d",
            "pixel",
            "digital art",
            "style",
            "drawing",
            "film",
            "portrait",
            "concept art",
        ],
        question: "what should it look like: a photograph, an oil painting, an anime still, a 3D render?",
        addition: "digital painting",
    },
    Aspect {
        name: "lighting",
        cues: &[
            "light",
            "lit",
            "sun",
            "golden hour",
            "shadow",
            "glow",
            "neon",
            "dawn",
            "dusk",
            "night",
            "backlit",
            "moon",
            "candle",
            "overcast",
        ],
        question: "what is the light like: golden hour, soft studio light, neon at night?",
        addition: "soft natural light",
    },
    Aspect {
        name: "composition",
        cues: &[
            "close-up",
            "close up",
            "wide",
            "shot",
            "angle",
            "view",
            "framing",
            "portrait",
            "landscape",
            "macro",
            "aerial",
            "centered",
            "centred",
            "full body",
            "lens",
            "mm",
        ],
        question: "how is it framed: a close-up, a wide shot, seen from above?",
        addition: "wide shot",
    },
    Aspect {
        name: "detail",
        cues: &["detailed", "texture", "intricate", "sharp", "color", "colour", "palette", "mood", "atmosphere"],
        question: "what mood or colours should it have?",
        addition: "rich colours, detailed",
    },
];

/// What the local rules found in a prompt.
#[derive(Debug, Clone)]
pub struct Findings {
    pub covered: Vec<&'static Aspect>,
    pub missing: Vec<&'static Aspect>,
    pub words: usize,
}

/// Checks which aspects a prompt covers. Used by the local critic and the demo coach.
pub fn local_findings(prompt: &str) -> Findings {
    let lower = prompt.to_lowercase();
    let (covered, missing) = ASPECTS.iter().partition(|aspect| aspect.cues.iter().any(|cue| lower.contains(cue)));
    Findings { covered, missing, words: prompt.split_whitespace().count() }
}

/// A critic made of plain rules; see the module documentation.
#[derive(Debug, Default, Clone)]
pub struct LocalCritic;

#[async_trait]
impl PromptCritic for LocalCritic {
    async fn critique(&self, prompt: &Prompt) -> Result<Critique> {
        Ok(local_critique(prompt))
    }
}

fn local_critique(prompt: &Prompt) -> Critique {
    let text = prompt.as_str().trim_end_matches(['.', ',']);
    let findings = local_findings(text);
    let mut strengths: Vec<String> =
        findings.covered.iter().map(|aspect| format!("it sets the {}", aspect.name)).collect();
    let mut improvements: Vec<String> =
        findings.missing.iter().map(|aspect| format!("it does not say the {}", aspect.name)).collect();
    if findings.words >= 8 {
        strengths.push("it is specific enough to steer the model".into());
    } else {
        improvements.push(format!("it is short ({} words): models fill the gaps with clichés", findings.words));
    }
    if findings.words > 60 {
        improvements.push("it is long: models weigh the first words most, so lead with the subject".into());
    }
    let suggestions = findings.missing.iter().map(|aspect| format!("Say {}", aspect.question)).collect();
    let additions: Vec<&str> = findings.missing.iter().map(|aspect| aspect.addition).collect();
    let improved = if additions.is_empty() { text.to_string() } else { format!("{text}, {}", additions.join(", ")) };
    Critique {
        strengths,
        improvements,
        suggestions,
        improved_prompts: vec![
            ImprovedPrompt { family: "stability".into(), prompt: format!("{improved}, highly detailed") },
            ImprovedPrompt { family: "amazon".into(), prompt: truncate_characters(&improved, 512) },
        ],
        negative_prompt_suggestions: vec!["blurry".into(), "low quality".into(), "watermark".into(), "text".into()],
        explanation: "Prompts that name the subject, the style, the light and the framing give the model less to \
                      guess. (Written by local rules: configure Bedrock for Claude's critique.)"
            .into(),
        reviewer: "local rules".into(),
    }
}

fn truncate_characters(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bare_prompt_is_told_what_is_missing() {
        let critique = LocalCritic.critique(&Prompt::parse("a cat").unwrap()).await.unwrap();
        assert!(critique.improvements.iter().any(|line| line.contains("lighting")), "{critique:?}");
        assert!(critique.improvements.iter().any(|line| line.contains("short")), "{critique:?}");
        assert!(critique.improved_prompts[0].prompt.starts_with("a cat, "), "{critique:?}");
        assert_eq!(critique.reviewer, "local rules");
    }

    #[tokio::test]
    async fn a_full_prompt_is_praised_and_kept() {
        let text = "a close-up oil painting of a cat by a window, golden hour light, detailed fur texture";
        let critique = LocalCritic.critique(&Prompt::parse(text).unwrap()).await.unwrap();
        assert!(critique.improvements.is_empty(), "{critique:?}");
        assert_eq!(critique.strengths.len(), 5, "{critique:?}");
        assert_eq!(critique.improved_prompts[1].prompt, text);
    }
}
