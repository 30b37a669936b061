//! Refusals and their one appeal, for generations and edits alike.
//!
//! A refusal that may be appealed is kept in the store, per person and text
//! (`users/{owner}/refusals/{sha256 of the normalised text}.json`). An appeal must name such a
//! refusal and marks it appealed by compare-and-swap before the reviewer is asked, so each
//! refused text is appealed once per person on every replica, and an appeal with no refusal
//! behind it (a forged form field, an API call with `appeal: true` for a fresh prompt) is
//! refused without a model call. The reviewer's "allowed" lets that one job through; it is not
//! remembered for anyone else.
//!
//! A refused request is also kept whole for a button or a form to appeal later
//! (`users/{owner}/refused/{id}.json`, with an edit's images beside it), since an upload cannot
//! be sent again from a Discord button.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Actor, Atelier, EditPlan, GenerationPlan, HeldId, HeldRef};

/// About how long the reviewer's answer is (a verdict, a category and a sentence of reason).
const REVIEW_ANSWER_CHARACTERS: usize = 400;
use crate::error::{Refused, Result};
use crate::gallery::{ImageId, Owner};
use crate::images::check_upload;
use crate::pricing::Tokens;
use crate::request::{EditFields, GenerationFields, Region};
use crate::safety::{Audience, Refusal, Verdict, normalise};
use crate::store::{ObjectKey, PutMode};

/// A refusal on record, which its person may appeal once.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefusalRecord {
    by: String,
    category: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    refused_at: OffsetDateTime,
    appealed: bool,
}

/// A refused request kept whole for its appeal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum HeldRefusal {
    Generation {
        fields: GenerationFields,
    },
    /// The edit's images are kept beside the record (`…/{id}.source`, `…/{id}.mask`).
    Edit {
        fields: EditFields,
        parent: Option<ImageId>,
        painted_mask: bool,
    },
}

/// A kept refused request, ready to run again with its appeal.
#[allow(clippy::large_enum_variant, reason = "made once per appeal and consumed at once")]
#[derive(Debug, Clone)]
pub enum HeldAppeal {
    Generation { plan: GenerationPlan },
    Edit { plan: EditPlan },
}

impl Atelier {
    fn refusal_key(owner: &Owner, text: &str) -> Result<ObjectKey> {
        let digest = Sha256::digest(normalise(text).as_bytes());
        let name: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        Self::key(format!("users/{owner}/refusals/{name}.json"))
    }

    /// Keeps a refusal that may be appealed; a text refused again keeps its first record (and
    /// whether it was appealed).
    pub(super) async fn record_refusal(&self, owner: &Owner, text: &str, refused: &Refused) -> Result<()> {
        let record = RefusalRecord {
            by: refused.by.to_string(),
            category: refused.category.clone(),
            refused_at: OffsetDateTime::now_utc(),
            appealed: false,
        };
        self.records("refusal").create(&Self::refusal_key(owner, text)?, &record).await.map(|_| ())
    }

    /// The one appeal of a refused text: claimed in the store, then reviewed. `Ok` lets the
    /// appealing job through; a refusal that stands, an appeal made before, or no refusal to
    /// appeal is [`crate::Error::Blocked`].
    pub(super) async fn appeal(&self, actor: &Actor, text: &str, audience: Audience) -> Result<()> {
        let owner = &actor.owner;
        let key = Self::refusal_key(owner, text)?;
        // Nothing is counted for an appeal that cannot be made.
        match self.records("refusal").get::<RefusalRecord>(&key).await? {
            Some(record) if !record.appealed => self.count_appeal(owner).await?,
            _ => {}
        }
        self.records("refusal")
            .update(&key, |record: Option<RefusalRecord>| match record {
                None => Err(crate::Error::Blocked(Refused::appeal_not_possible(
                    "there is no refusal of this prompt to appeal: send it as it is first, and appeal if it is refused",
                ))),
                Some(record) if record.appealed => Err(crate::Error::Blocked(Refused::appeal_not_possible(
                    "this prompt was already appealed once; change the prompt instead",
                ))),
                Some(record) => Ok((RefusalRecord { appealed: true, ..record }, ())),
            })
            .await?;
        self.before_text_call(owner, self.role_budget(actor).await).await?;
        let verdict = self.safety.review(text, audience).await;
        let tokens = Tokens::estimate(text.chars().count(), REVIEW_ANSWER_CHARACTERS)
            .plus_input(super::conversations::INSTRUCTION_TOKENS);
        self.charge_text_call(owner, "appeal", tokens).await;
        match verdict? {
            Verdict::Allowed => Ok(()),
            Verdict::Blocked(Refusal { by, category, reason }) => {
                Err(crate::Error::Blocked(Refused { by, category: Some(category), reason, appealable: false }))
            }
        }
    }

    /// Counts one more appeal today for `owner`, refusing it past the day's limit
    /// (`ATELIER_DAILY_APPEALS`): each appeal is a call to the stronger model.
    async fn count_appeal(&self, owner: &Owner) -> Result<()> {
        let Some(limit) = self.jobs.limits().daily_appeals else { return Ok(()) };
        let today = OffsetDateTime::now_utc().date();
        let key = Self::key(format!("users/{owner}/appeals/{today}.json"))?;
        self.records("appeal count")
            .update(&key, |count: Option<u32>| {
                let count = count.unwrap_or(0);
                if count >= limit {
                    return Err(crate::Error::Blocked(Refused::appeal_not_possible(format!(
                        "you have appealed {limit} refusals today, the most a day; appeal again tomorrow (UTC)"
                    ))));
                }
                Ok((count + 1, ()))
            })
            .await
    }

    /// Keeps a refused generation so its owner can appeal it later from a button or a page
    /// that carries only this id.
    pub async fn hold_refused(&self, actor: &Actor, fields: &GenerationFields) -> Result<HeldId> {
        let id = HeldId(ulid::Ulid::new());
        let held = HeldRefusal::Generation { fields: fields.clone() };
        self.records("refused request").overwrite(&Self::held_key(&actor.owner, id, "json")?, &held).await?;
        Ok(id)
    }

    /// Keeps a refused edit, its images included, so its owner can appeal it later.
    pub async fn hold_refused_edit(&self, actor: &Actor, plan: &EditPlan) -> Result<HeldId> {
        let id = HeldId(ulid::Ulid::new());
        let request = plan.request();
        let store = self.store();
        let put = |key: ObjectKey, bytes: Bytes| async move {
            store
                .put(&key, bytes, "application/octet-stream", PutMode::Overwrite)
                .await
                .map_err(|error| crate::Error::operator("keeping a refused edit's images", error))
        };
        put(Self::held_key(&actor.owner, id, "source")?, request.source.bytes().clone()).await?;
        let painted_mask = match &request.region {
            Some(Region::MaskImage(mask)) => {
                put(Self::held_key(&actor.owner, id, "mask")?, mask.bytes().clone()).await?;
                true
            }
            _ => false,
        };
        let held = HeldRefusal::Edit { fields: request.fields(), parent: plan.parent(), painted_mask };
        self.records("refused request").overwrite(&Self::held_key(&actor.owner, id, "json")?, &held).await?;
        Ok(id)
    }

    fn held_key(owner: &Owner, id: HeldId, part: &str) -> Result<ObjectKey> {
        Self::key(format!("users/{owner}/refused/{id}.{part}"))
    }

    /// A kept refused request, for its appeal; only the person whose request was refused may.
    /// The request comes back checked against its model, to run with its appeal
    /// ([`Self::generate_appealed`], [`Self::edit_appealed`]), which is where the reviewer is
    /// asked and the one appeal is counted. The kept request is then let go.
    pub async fn appeal_held(&self, actor: &Actor, held: &HeldRef) -> Result<HeldAppeal> {
        self.only_owner(actor, held, "only the person whose prompt was refused can appeal it").await?;
        let key = Self::held_key(&held.owner, held.id, "json")?;
        let records = self.records("refused request");
        let gone = || crate::Error::not_found("that refused request is no longer kept; send it again");
        let kept: HeldRefusal = records.get(&key).await?.ok_or_else(gone)?;
        let appeal = match kept {
            HeldRefusal::Generation { fields } => {
                let plan = self.plan_generation(actor, &fields).await?;
                HeldAppeal::Generation { plan }
            }
            HeldRefusal::Edit { fields, parent, painted_mask } => {
                let read = |part: &'static str| async move {
                    let key = Self::held_key(&held.owner, held.id, part)?;
                    self.store().get(&key).await.map_err(|_| gone())
                };
                let source = check_upload(&actor.owner, read("source").await?, "the refused edit's image").await?;
                let mask = match painted_mask {
                    true => Some(check_upload(&actor.owner, read("mask").await?, "the refused edit's mask").await?),
                    false => None,
                };
                let plan = self.plan_checked_edit(fields.parse(source, mask)?)?;
                HeldAppeal::Edit { plan: EditPlan { parent, ..plan } }
            }
        };
        records.delete(&key).await?;
        for part in ["source", "mask"] {
            let _ = self.store().delete(&Self::held_key(&held.owner, held.id, part)?).await;
        }
        Ok(appeal)
    }
}
