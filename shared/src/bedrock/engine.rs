//! The Bedrock image engine: picks the model and its family adapter, checks the request
//! against that model's limits, calls InvokeModel, and reads the answer.

use async_trait::async_trait;
use aws_smithy_types::Blob;
use futures::future::try_join_all;
use serde::Serialize;

use super::client::{Bedrock, CallContext, error_from_sdk};
use super::wire::Answer;
use super::{image_services, sdxl, stability, titan};
use crate::engine::EngineKind;
use crate::engine::catalog::{Catalog, Family, ModelEntry};
use crate::engine::{Generated, GeneratedImage, ImageEngine, ModelInfo, SafetyOutcome};
use crate::error::{Error, Invalid, Refused, Result};
use crate::images::CheckedImage;
use crate::metrics::{CallOutcome, Metrics};
use crate::request::{EditMode, EditRequest, GenerationRequest, ModelName, Seed};

/// Image generation and editing on Bedrock.
#[derive(Clone, Debug)]
pub struct BedrockImageEngine {
    bedrock: Bedrock,
    catalog: Catalog,
    /// Where each call's latency and outcome is recorded.
    metrics: Metrics,
}

impl BedrockImageEngine {
    pub fn new(bedrock: Bedrock, catalog: Catalog, metrics: Metrics) -> Self {
        Self { bedrock, catalog, metrics }
    }

    async fn invoke(&self, model: &ModelEntry, payload: Vec<u8>) -> Result<Vec<u8>> {
        let call = CallContext { model: &model.alias, model_id: &model.id, region: &self.bedrock.region };
        let started = std::time::Instant::now();
        let answered = self
            .bedrock
            .runtime
            .invoke_model()
            .model_id(&model.id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(payload))
            .send()
            .await
            .map_err(|error| error_from_sdk(error, call));
        self.metrics.model_call(&model.alias, "invoke_model", started.elapsed(), CallOutcome::of(&answered));
        let output = answered?;
        tracing::info!(model = %model.id, duration_ms = started.elapsed().as_millis() as u64, "{} answered", model.alias);
        Ok(output.body.into_inner())
    }

    /// Picks the model and the seed of each call, and checks the request, with each seed,
    /// against the model's limits: nothing is sent until all of it is known to be acceptable.
    fn plan_generation(&self, request: &GenerationRequest) -> Result<(&ModelEntry, Vec<Seed>), Invalid> {
        let model = self.catalog.for_generation(request.model.as_ref())?;
        let first_seed = choose_seed(model, request.seed)?;
        let seeds = match model.family {
            // Titan and Nova Canvas make a batch in one call.
            Family::Titan(_) => vec![first_seed],
            family => (0..request.count.get())
                .map(|index| Seed(first_seed.0.saturating_add(index).min(max_seed(family))))
                .collect(),
        };
        for &seed in &seeds {
            check_generation(model, request, seed)?;
        }
        Ok((model, seeds))
    }

    /// Picks the model for an edit and the seed, and checks the request against the model's
    /// limits without touching its images: encoding them is [`edit_payload`]'s work, on the
    /// blocking pool.
    fn plan_edit(&self, request: &EditRequest) -> Result<(&ModelEntry, Seed)> {
        request.check()?;
        let model = self.catalog.for_edit(request.mode, request.model.as_ref())?;
        let seed = choose_seed(model, request.seed)?;
        check_edit(model, request, seed)?;
        Ok((model, seed))
    }

    /// Calls the model with one body and turns its answer into checked images, on the
    /// blocking pool: parsing megabytes of JSON, decoding base64 and PNG are CPU work.
    async fn draw(&self, model: &ModelEntry, payload: Vec<u8>, seed: Seed) -> Result<Vec<GeneratedImage>> {
        let response = self.invoke(model, payload).await?;
        let (family, alias) = (model.family, model.alias.clone());
        tokio::task::spawn_blocking(move || read_images(family, &alias, &response, seed))
            .await
            .map_err(|error| Error::operator("checking a model's image", error))?
    }
}

/// Reads a model's response body into checked images: the JSON is parsed and each image's
/// base64 decoded once, then each image is checked like an upload (a broken one must not
/// reach a gallery), and its gallery thumbnail made from the same decode. `seed` is the one
/// asked for, for the images whose seed the model does not report. CPU work on whole images:
/// async callers run it on the blocking pool, as [`BedrockImageEngine`] does.
pub fn read_images(family: Family, alias: &str, response: &[u8], seed: Seed) -> Result<Vec<GeneratedImage>> {
    let answer = match family {
        Family::StabilitySdxl => sdxl::read_response(response)?,
        Family::Titan(_) => titan::read_response(response)?,
        Family::StabilityText { .. } | Family::StabilityService(_) => stability::read_response(response)?,
    };
    let returned = match answer {
        Answer::Images(images) => images,
        Answer::Filtered(what) => {
            return Err(Error::Blocked(Refused::by_model_filter(format!("{what}: change the prompt and try again"))));
        }
    };
    returned
        .into_iter()
        .map(|image| {
            let checked = CheckedImage::check_model_output(image.bytes, "the model's image")
                .map_err(|invalid| Error::operator(format!("{alias} returned a broken image"), invalid))?;
            Ok(GeneratedImage { image: checked, seed: image.seed.unwrap_or(seed), safety: SafetyOutcome::Passed })
        })
        .collect()
}

/// Checks a text-to-image request, with the seed of one call, against the model's limits.
fn check_generation(model: &ModelEntry, request: &GenerationRequest, seed: Seed) -> Result<(), Invalid> {
    match model.family {
        Family::StabilitySdxl => sdxl::check_generation(model, request),
        Family::Titan(variant) => titan::check_generation(model, variant, request, seed),
        Family::StabilityText { .. } => stability::check_generation(model, request),
        Family::StabilityService(_) => Err(Invalid::new(format!("{} cannot generate images", model.alias))),
    }
}

/// The body of one text-to-image call, in the model's family's schema, as the bytes
/// InvokeModel sends. Text-to-image bodies are a few hundred bytes: no work for the pool.
fn generation_payload(model: &ModelEntry, request: &GenerationRequest, seed: Seed) -> Result<Vec<u8>> {
    match model.family {
        Family::StabilitySdxl => serialize(&sdxl::generation_body(model, request, seed)?),
        Family::Titan(variant) => serialize(&titan::generation_body(model, variant, request, seed)?),
        Family::StabilityText { .. } => serialize(&stability::generation_body(model, request, seed)?),
        Family::StabilityService(_) => Err(Invalid::new(format!("{} cannot generate images", model.alias)).into()),
    }
}

/// Checks an edit, with its seed, against the model's limits, without touching its images.
fn check_edit(model: &ModelEntry, request: &EditRequest, seed: Seed) -> Result<()> {
    match model.family {
        Family::StabilitySdxl => sdxl::check_edit(model, request),
        Family::Titan(variant) => titan::check_edit(model, variant, request, seed),
        Family::StabilityText { .. } => stability::check_edit(model, request),
        Family::StabilityService(tool) => image_services::check_edit(model, tool, request, seed),
    }
}

/// The body of an edit for `model`, in its family's schema, with the images encoded, as the
/// bytes InvokeModel sends: CPU work (base64 of the source, a mask redrawn in the model's
/// convention, an outpaint canvas) for the blocking pool.
fn edit_payload(model: &ModelEntry, request: &EditRequest, seed: Seed) -> Result<Vec<u8>> {
    match model.family {
        Family::StabilitySdxl => serialize(&sdxl::edit_body(model, request, seed)?),
        Family::Titan(variant) => serialize(&titan::edit_body(model, variant, request, seed)?),
        Family::StabilityText { .. } => serialize(&stability::edit_body(model, request, seed)?),
        Family::StabilityService(tool) => serialize(&image_services::edit_body(model, tool, request, seed)?),
    }
}

/// A request body as the bytes InvokeModel sends.
fn serialize(body: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|error| Error::operator("encoding a request body", error))
}

/// The largest seed a family accepts.
fn max_seed(family: Family) -> u32 {
    match family {
        Family::Titan(variant) => titan::max_seed(variant),
        Family::StabilitySdxl => u32::MAX,
        Family::StabilityText { .. } | Family::StabilityService(_) => stability::MAX_SEED,
    }
}

/// The seed to use: the one asked for (checked against the model), or a random one it accepts.
fn choose_seed(model: &ModelEntry, asked: Option<Seed>) -> Result<Seed, Invalid> {
    let max = max_seed(model.family);
    match asked {
        Some(seed) if seed.0 > max => {
            Err(Invalid::new(format!("{} takes seeds from 0 to {max}; {seed} is too large", model.alias)))
        }
        Some(seed) => Ok(seed),
        None => Ok(Seed(rand::random_range(0..=max))),
    }
}

fn model_info(entry: &ModelEntry) -> ModelInfo {
    ModelInfo {
        alias: entry.alias.clone(),
        id: entry.id.clone(),
        family: entry.family.name().into(),
        label: entry.alias.clone(),
        can_generate: entry.family.generates(),
        edit_modes: entry.family.edit_modes(),
        tuning: match entry.family {
            Family::StabilitySdxl => vec!["CFG scale 0 to 35".into(), "steps 10 to 50".into()],
            Family::Titan(_) => vec!["CFG scale 1.1 to 10".into()],
            Family::StabilityText { .. } | Family::StabilityService(_) => Vec::new(),
        },
    }
}

#[async_trait]
impl ImageEngine for BedrockImageEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Bedrock
    }

    fn models(&self) -> Vec<ModelInfo> {
        let default = self.catalog.for_generation(None).ok();
        let mut models: Vec<ModelInfo> = default.into_iter().map(model_info).collect();
        models.extend(self.catalog.entries().iter().filter(|entry| Some(*entry) != default).map(model_info));
        models
    }

    fn model_id_for(&self, model: Option<&ModelName>, edit_mode: Option<EditMode>) -> Option<String> {
        let entry = match edit_mode {
            None => self.catalog.for_generation(model),
            Some(mode) => self.catalog.for_edit(mode, model),
        };
        entry.ok().map(|entry| entry.id.clone())
    }

    fn check_generation(&self, request: &GenerationRequest) -> Result<Seed, Invalid> {
        let (_, seeds) = self.plan_generation(request)?;
        seeds.first().copied().ok_or_else(|| Invalid::new("ask for at least one image"))
    }

    fn check_edit(&self, request: &EditRequest) -> Result<Seed> {
        self.plan_edit(request).map(|(_, seed)| seed)
    }

    async fn generate(&self, request: &GenerationRequest) -> Result<Generated> {
        let (model, seeds) = self.plan_generation(request)?;
        let payloads = seeds
            .into_iter()
            .map(|seed| Ok((generation_payload(model, request, seed)?, seed)))
            .collect::<Result<Vec<_>>>()?;
        let batches = try_join_all(payloads.into_iter().map(|(payload, seed)| self.draw(model, payload, seed))).await?;
        Ok(Generated { model: model_info(model), images: batches.into_iter().flatten().collect() })
    }

    async fn edit(&self, request: &EditRequest) -> Result<Generated> {
        let (model, seed) = self.plan_edit(request)?;
        let (body_model, body_request) = (model.clone(), request.clone());
        // The body holds the source in base64: it is built and serialised on the pool, and only
        // the serialised bytes wait out the model call.
        let payload = tokio::task::spawn_blocking(move || edit_payload(&body_model, &body_request, seed))
            .await
            .map_err(|error| Error::operator("building an edit request", error))??;
        let images = self.draw(model, payload, seed).await?;
        Ok(Generated { model: model_info(model), images })
    }
}

#[cfg(test)]
mod tests;
