//! What people ask for, in Atelier's own terms: prompts, shapes, seeds, counts, styles and
//! edit modes. Each type checks its value once when it is made, so everything downstream
//! (engines, the store, the front ends) can trust it, and every refusal says what to change.

mod choices;
pub mod contract;
mod edit;
mod edit_inputs;
mod fields;
mod generation;
pub mod inline;
mod prompt;
mod shape;

pub use choices::{HexColor, ImageCount, ModelName, Seed, StyleName, parse_palette};
pub use edit::{EditMode, EditRequest, MASK_RULE, OutpaintDirection, Region, marks_region};
pub use edit_inputs::{EditInputs, InputUse};
pub use fields::{EditFields, GenerationFields, NONE_WORD, is_none_word};
pub use generation::{GenerationRequest, Guidance};
pub use prompt::{MAX_PROMPT_CHARACTERS, Prompt, parse_negative_prompt};
pub use shape::{AspectRatio, MAX_SIDE, Shape, Size};

#[cfg(test)]
mod tests;
