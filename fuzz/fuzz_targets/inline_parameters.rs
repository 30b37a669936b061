//! Any text typed as a prompt, with inline parameters (`--ar 16:9 --seed 42 …`) or not, is
//! either refused with a message or parsed into a request: never a panic.
#![no_main]

use atelier_shared::request::GenerationFields;
use atelier_shared::request::inline::apply_inline_parameters;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    // As the bot does: the whole text is the prompt, and nothing was given explicitly.
    let explicit = GenerationFields { prompt: text.to_string(), ..GenerationFields::default() };
    if let Ok(fields) = apply_inline_parameters(text, explicit) {
        if let Ok(request) = fields.parse() {
            // Whatever was accepted must be within the rules the types promise.
            assert!(!request.prompt.as_str().trim().is_empty());
            let size = request.shape.to_size();
            assert!(size.width >= 64 && size.height >= 64);
        }
    }
});
