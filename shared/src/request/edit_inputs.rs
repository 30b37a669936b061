//! Which inputs each edit mode reads, so every front end offers the same fields for a mode
//! (the web form shows only these) and nobody is asked for something the mode ignores.
//!
//! "Optional" means at least one model that does the mode reads the input; the engine still
//! refuses, with a message, an input the chosen model has no field for.

use crate::request::EditMode;

/// Whether an edit mode reads one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputUse {
    /// The edit cannot be made without it.
    Required,
    /// The mode can use it; it may be left blank.
    Optional,
    /// The mode ignores it, so a form should not offer it.
    Unused,
}

impl InputUse {
    /// Whether a form should offer the input for the mode.
    pub fn is_offered(self) -> bool {
        self != Self::Unused
    }
}

/// The inputs of an edit besides the source image and the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EditInputs {
    /// What to paint.
    pub prompt: InputUse,
    pub negative_prompt: InputUse,
    /// A painted mask image or a mask prompt.
    pub region: InputUse,
    /// How close a variation stays to its source.
    pub similarity: InputUse,
    /// Which way an outpaint grows the picture.
    pub direction: InputUse,
    pub seed: InputUse,
}

impl EditMode {
    /// The inputs this mode reads, from the same rules [`crate::request::EditRequest::check`]
    /// enforces (a prompt and a region where [`Self::needs_prompt`] and
    /// [`Self::needs_region`] say so).
    pub fn inputs(self) -> EditInputs {
        use InputUse::{Optional, Required, Unused};
        let required_if = |needed: bool| if needed { Required } else { Unused };
        match self {
            Self::Inpaint | Self::Replace | Self::Recolor => EditInputs {
                prompt: required_if(self.needs_prompt()),
                negative_prompt: Optional,
                region: required_if(self.needs_region()),
                similarity: Unused,
                direction: Unused,
                seed: Optional,
            },
            // Without a prompt, an outpaint or a variation of a gallery image keeps the
            // prompt it was made with (see `Atelier::edit`).
            Self::Outpaint => EditInputs {
                prompt: Optional,
                negative_prompt: Optional,
                region: Unused,
                similarity: Unused,
                direction: Optional,
                seed: Optional,
            },
            Self::Variation => EditInputs {
                prompt: Optional,
                negative_prompt: Optional,
                region: Unused,
                similarity: Optional,
                direction: Unused,
                seed: Optional,
            },
            // The default (fast) upscaler takes nothing; the conservative and creative ones
            // take a prompt describing the picture, a negative prompt and a seed.
            Self::Upscale => EditInputs {
                prompt: Optional,
                negative_prompt: Optional,
                region: Unused,
                similarity: Unused,
                direction: Unused,
                seed: Optional,
            },
            Self::RemoveBackground => EditInputs {
                prompt: Unused,
                negative_prompt: Unused,
                region: Unused,
                similarity: Unused,
                direction: Unused,
                seed: Unused,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_mode_requires_is_what_the_request_check_requires() {
        for mode in EditMode::ALL {
            let inputs = mode.inputs();
            assert_eq!(inputs.prompt == InputUse::Required, mode.needs_prompt(), "{mode}");
            assert_eq!(inputs.region == InputUse::Required, mode.needs_region(), "{mode}");
        }
    }

    #[test]
    fn only_variations_take_a_similarity_and_only_outpaints_a_direction() {
        for mode in EditMode::ALL {
            assert_eq!(mode.inputs().similarity.is_offered(), mode == EditMode::Variation, "{mode}");
            assert_eq!(mode.inputs().direction.is_offered(), mode == EditMode::Outpaint, "{mode}");
        }
        assert!(!EditMode::RemoveBackground.inputs().prompt.is_offered());
    }
}
