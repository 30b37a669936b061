//! The buttons under results and suggestions, and the Edit modal. Every `custom_id` carries
//! the action, the image's owner and its id ([`Target`]); the handler loads the rest from
//! the gallery, so buttons keep working after a restart and on another replica (and after
//! their owner links a web account: the core finds the images where the link moved them, and
//! takes the linked person for the owner the button names). Someone other than the owner who
//! presses a button acts for themselves (their quota, their gallery), except Delete, which
//! only the owner may use.

use atelier_shared::Error;
use atelier_shared::gallery::{ImageRecord, Owner, Variant};
use atelier_shared::jobs::Cancelled;
use atelier_shared::request::{EditFields, EditMode, GenerationFields};
use atelier_shared::{Appeal, EditSource, HeldAppeal, ImageRef, Owned};
use poise::serenity_prelude as serenity;

use crate::render::{self, Action, Target, truncate};
use crate::respond::{Responder, retrying};
use crate::{BotError, Data, work};

/// The modal's text inputs.
const PROMPT_INPUT: &str = "prompt";
const MASK_PROMPT_INPUT: &str = "mask_prompt";

/// Handles a component or modal interaction if it is one of ours.
pub async fn on_interaction(
    context: &serenity::Context,
    interaction: &serenity::Interaction,
    data: &Data,
) -> Result<(), BotError> {
    match interaction {
        serenity::Interaction::Component(component) => {
            let Some(target) = Target::parse(&component.data.custom_id) else { return Ok(()) };
            on_button(context, component, data, target).await
        }
        serenity::Interaction::Modal(modal) => {
            let Some(target) = Target::parse(&modal.data.custom_id) else { return Ok(()) };
            on_edit_modal(context, modal, data, target).await
        }
        _ => Ok(()),
    }
}

/// Answers only the presser, at once (this is the interaction's acknowledgement).
async fn tell(
    context: &serenity::Context,
    component: &serenity::ComponentInteraction,
    text: &str,
) -> Result<(), BotError> {
    let message = serenity::CreateInteractionResponseMessage::new().content(truncate(text, 2_000)).ephemeral(true);
    retrying(|| {
        component.create_response(&context.http, serenity::CreateInteractionResponse::Message(message.clone()))
    })
    .await?;
    Ok(())
}

async fn defer(
    context: &serenity::Context,
    component: &serenity::ComponentInteraction,
    ephemeral: bool,
) -> Result<Responder, BotError> {
    let message = serenity::CreateInteractionResponseMessage::new().ephemeral(ephemeral);
    component.create_response(&context.http, serenity::CreateInteractionResponse::Defer(message)).await?;
    Ok(Responder::for_component(context, component, ephemeral))
}

const GONE: &str = "This image is no longer in the gallery (it was deleted), so there is nothing to work from.";

async fn on_button(
    context: &serenity::Context,
    component: &serenity::ComponentInteraction,
    data: &Data,
    target: Target,
) -> Result<(), BotError> {
    let presser = work::owner_of(data, &component.user).await?;
    match target.action {
        Action::ImagineHeld => return imagine_held(context, component, data, &target, presser).await,
        Action::Appeal => return appeal(context, component, data, &target, presser).await,
        Action::Cancel => return cancel(context, component, data, &target, presser).await,
        _ => {}
    }
    // Everything else works on an image: a deleted one is answered before anything is spent.
    let Some(image) = target.image() else { return Ok(()) };
    let record = match data.core.image_record(&image).await {
        Ok(record) => record,
        Err(Error::NotFound(_)) => return tell(context, component, GONE).await,
        Err(error) => return Err(error.into()),
    };
    match target.action {
        Action::Delete => delete(context, component, data, &image, presser).await,
        Action::Publish => publish(context, component, data, &record, presser).await,
        Action::Unpublish => unpublish(context, component, data, &image, presser).await,
        Action::Details => {
            let embed = render::details(&record, &work::gallery_url(data, &record));
            // With every action's button: under a batch, this is how an image reaches the
            // actions its own row has no room for.
            let message = serenity::CreateInteractionResponseMessage::new()
                .embed(embed)
                .components(render::buttons(&record))
                .ephemeral(true);
            component.create_response(&context.http, serenity::CreateInteractionResponse::Message(message)).await?;
            Ok(())
        }
        Action::SendToDm => send_to_dm(context, component, data, &record).await,
        Action::Edit => {
            let prompt =
                serenity::CreateInputText::new(serenity::InputTextStyle::Paragraph, "What to paint", PROMPT_INPUT)
                    .value(truncate(record.prompt.as_deref().unwrap_or(""), 4_000))
                    .max_length(4_000)
                    .required(true);
            let mask_prompt = serenity::CreateInputText::new(
                serenity::InputTextStyle::Short,
                "Where (empty for the whole picture)",
                MASK_PROMPT_INPUT,
            )
            .placeholder("the sky, the dog's collar…")
            .max_length(1_000)
            .required(false);
            let modal = serenity::CreateModal::new(target.custom_id(), "Edit this image").components(vec![
                serenity::CreateActionRow::InputText(prompt),
                serenity::CreateActionRow::InputText(mask_prompt),
            ]);
            component.create_response(&context.http, serenity::CreateInteractionResponse::Modal(modal)).await?;
            Ok(())
        }
        Action::Reroll => {
            let Some(fields) = data.core.fields_to_remake(&record) else {
                return tell(context, component, "This image had no prompt to draw again; try Variations.").await;
            };
            imagine_for(context, component, data, presser, fields).await
        }
        Action::Variation | Action::ZoomOut | Action::RemoveBackground | Action::Upscale => {
            let mode = match target.action {
                Action::Variation => EditMode::Variation,
                Action::ZoomOut => EditMode::Outpaint,
                Action::RemoveBackground => EditMode::RemoveBackground,
                _ => EditMode::Upscale,
            };
            let fields = EditFields { mode: mode.as_str().to_string(), ..EditFields::default() };
            run_edit(context, component.into(), data, image, presser, fields).await
        }
        Action::ImagineHeld | Action::Appeal | Action::Cancel => Ok(()),
    }
}

/// Either kind of interaction that can start an edit.
enum Pressed<'a> {
    Button(&'a serenity::ComponentInteraction),
    Modal(&'a serenity::ModalInteraction),
}

impl<'a> From<&'a serenity::ComponentInteraction> for Pressed<'a> {
    fn from(component: &'a serenity::ComponentInteraction) -> Self {
        Self::Button(component)
    }
}

/// Edits a gallery image for the presser (their quota, their gallery); the core decides
/// whether the image is the result's parent.
async fn run_edit(
    context: &serenity::Context,
    pressed: Pressed<'_>,
    data: &Data,
    image: ImageRef,
    presser: Owner,
    fields: EditFields,
) -> Result<(), BotError> {
    let private = data.core.preferences(&presser).await?.private_results;
    let responder = match pressed {
        Pressed::Button(component) => defer(context, component, private).await?,
        Pressed::Modal(modal) => {
            let message = serenity::CreateInteractionResponseMessage::new().ephemeral(private);
            modal.create_response(&context.http, serenity::CreateInteractionResponse::Defer(message)).await?;
            Responder::for_modal(context, modal, private)
        }
    };
    let actor = responder.actor(presser);
    let plan = match data.core.plan_edit(&actor, EditSource::Gallery(image), None, &fields).await {
        Ok(plan) => plan,
        Err(error) => return work::fail(&responder, &error).await,
    };
    work::edit(data, &responder, &actor, &plan, Appeal::No).await
}

async fn on_edit_modal(
    context: &serenity::Context,
    modal: &serenity::ModalInteraction,
    data: &Data,
    target: Target,
) -> Result<(), BotError> {
    let mut prompt = None;
    let mut mask_prompt = None;
    for row in &modal.data.components {
        for component in &row.components {
            if let serenity::ActionRowComponent::InputText(input) = component {
                let value = input.value.clone().filter(|value| !value.trim().is_empty());
                match input.custom_id.as_str() {
                    PROMPT_INPUT => prompt = value,
                    MASK_PROMPT_INPUT => mask_prompt = value,
                    _ => {}
                }
            }
        }
    }
    let presser = work::owner_of(data, &modal.user).await?;
    let Some(image) = target.image() else { return Ok(()) };
    match data.core.image_record(&image).await {
        Ok(_) => {}
        Err(Error::NotFound(_)) => {
            let message = serenity::CreateInteractionResponseMessage::new().content(GONE).ephemeral(true);
            modal.create_response(&context.http, serenity::CreateInteractionResponse::Message(message)).await?;
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    let fields = EditFields::from_words(prompt, mask_prompt);
    run_edit(context, Pressed::Modal(modal), data, image, presser, fields).await
}

async fn delete(
    context: &serenity::Context,
    component: &serenity::ComponentInteraction,
    data: &Data,
    image: &ImageRef,
    presser: Owner,
) -> Result<(), BotError> {
    // Acknowledged before deleting: every replica hears the press, and only the one whose
    // acknowledgement Discord takes may delete. The core says who may.
    let responder = defer(context, component, true).await?;
    let actor = responder.actor(presser);
    if let Err(error) = data.core.delete_image(&actor, image).await {
        return work::fail(&responder, &error).await;
    }
    responder.finish(crate::respond::Outgoing::text("Deleted from your gallery.")).await?;
    if let Err(error) = retrying(|| component.message.delete(&context.http)).await {
        tracing::warn!(error = %error, "the image was deleted but its Discord message could not be removed");
    }
    Ok(())
}

/// Publishes the image and answers privately with its public page (and this server's
/// gallery), and a button to take it back.
async fn publish(
    context: &serenity::Context,
    component: &serenity::ComponentInteraction,
    data: &Data,
    record: &ImageRecord,
    presser: Owner,
) -> Result<(), BotError> {
    let responder = defer(context, component, true).await?;
    let actor = responder.actor(presser);
    let image = Owned::new(record.owner.clone(), record.id);
    let published = match data.core.publish(&actor, &image).await {
        Ok(published) => published,
        Err(error) => return work::fail(&responder, &error).await,
    };
    let link = |path: String| data.public_url.join(&path).map(|url| url.to_string()).unwrap_or_default();
    let mut text = format!(
        "Published: anyone with this link can see it, no sign-in needed.\n{}",
        link(format!("p/{}", record.id))
    );
    if let Some(guild_id) = published.guild_id {
        text.push_str(&format!("\nIt is in this server's gallery too: {}", link(format!("servers/{guild_id}"))));
    }
    let unpublish = Target::new(Action::Unpublish, &record.owner, render::TargetId::Image(record.id));
    let button =
        serenity::CreateButton::new(unpublish.custom_id()).label("Unpublish").style(serenity::ButtonStyle::Secondary);
    let outgoing = crate::respond::Outgoing {
        content: Some(text),
        components: vec![serenity::CreateActionRow::Buttons(vec![button])],
        ..crate::respond::Outgoing::default()
    };
    responder.finish(outgoing).await
}

async fn unpublish(
    context: &serenity::Context,
    component: &serenity::ComponentInteraction,
    data: &Data,
    image: &ImageRef,
    presser: Owner,
) -> Result<(), BotError> {
    let responder = defer(context, component, true).await?;
    let actor = responder.actor(presser);
    if let Err(error) = data.core.unpublish(&actor, image).await {
        return work::fail(&responder, &error).await;
    }
    responder.finish(crate::respond::Outgoing::text("Unpublished: its public page is gone.")).await
}

async fn send_to_dm(
    context: &serenity::Context,
    component: &serenity::ComponentInteraction,
    data: &Data,
    record: &ImageRecord,
) -> Result<(), BotError> {
    let responder = defer(context, component, true).await?;
    let image = Owned::new(record.owner.clone(), record.id);
    let (bytes, _) = match data.core.image_file(&image, Variant::Full).await {
        Ok(found) => found,
        Err(error) => return work::fail(&responder, &error).await,
    };
    let embed = render::embed(record).url(work::gallery_url(data, record));
    let message = if bytes.len() as u64 <= responder.attachment_size_limit {
        serenity::CreateMessage::new()
            .embed(embed.image(render::attachment_url(record)))
            .add_file(serenity::CreateAttachment::bytes(bytes.to_vec(), render::file_name(record)))
    } else {
        serenity::CreateMessage::new().embed(embed)
    };
    let sent = async {
        let dm = retrying(|| component.user.id.create_dm_channel(&context.http)).await?;
        retrying(|| dm.id.send_message(&context.http, message.clone())).await
    }
    .await;
    match sent {
        Ok(_) => responder.finish(crate::respond::Outgoing::text("Sent to your DMs.")).await,
        Err(error) => {
            tracing::info!(error = %error, "a DM could not be delivered");
            responder
                .finish(crate::respond::Outgoing::text(
                    "Discord would not let me DM you: allow direct messages from this server's members, then try again.",
                ))
                .await
        }
    }
}

async fn imagine_held(
    context: &serenity::Context,
    component: &serenity::ComponentInteraction,
    data: &Data,
    target: &Target,
    presser: Owner,
) -> Result<(), BotError> {
    let Some(held) = target.held() else { return Ok(()) };
    let fields = match data.core.held_request(&held).await {
        Ok(fields) => fields,
        Err(Error::NotFound(message)) => return tell(context, component, &crate::error::capitalise(&message)).await,
        Err(error) => return Err(error.into()),
    };
    imagine_for(context, component, data, presser, fields).await
}

/// Makes images from `fields` for whoever pressed the button, with their defaults filled in
/// (by the core): a request their model refuses is answered only to them before anything is
/// acknowledged.
async fn imagine_for(
    context: &serenity::Context,
    component: &serenity::ComponentInteraction,
    data: &Data,
    presser: Owner,
    fields: GenerationFields,
) -> Result<(), BotError> {
    let actor = crate::place_of!(&context.cache, component).actor(presser);
    let plan = match data.core.plan_generation(&actor, &fields).await {
        Ok(plan) => plan,
        Err(error) => return tell(context, component, &crate::error::capitalise(&error.user_message())).await,
    };
    let responder = defer(context, component, plan.private_results()).await?;
    work::generate(data, &responder, &actor, &plan, Appeal::No).await
}

async fn appeal(
    context: &serenity::Context,
    component: &serenity::ComponentInteraction,
    data: &Data,
    target: &Target,
    presser: Owner,
) -> Result<(), BotError> {
    let Some(held) = target.held() else { return Ok(()) };
    let private = data.core.preferences(&presser).await?.private_results;
    let responder = defer(context, component, private).await?;
    let actor = responder.actor(presser);
    // The core says who may appeal, runs the review, and answers a refusal that stands.
    match data.core.appeal_held(&actor, &held).await {
        Ok(HeldAppeal::Generation { plan }) => work::generate(data, &responder, &actor, &plan, Appeal::Asked).await,
        Ok(HeldAppeal::Edit { plan }) => work::edit(data, &responder, &actor, &plan, Appeal::Asked).await,
        Err(error) => work::fail(&responder, &error).await,
    }
}

/// Calls back a waiting job (the core lets only the person who asked). Whichever replica's
/// answer Discord takes, the job leaves the line: the replica holding it drops it at once or,
/// told through the store, before it starts.
async fn cancel(
    context: &serenity::Context,
    component: &serenity::ComponentInteraction,
    data: &Data,
    target: &Target,
    presser: Owner,
) -> Result<(), BotError> {
    let Some(job) = target.job() else {
        return tell(context, component, "That job has already finished.").await;
    };
    // Acknowledged before cancelling: every replica hears the press, and only the one whose
    // acknowledgement Discord takes may cancel (the other would find the job gone and could
    // answer "already finished" first).
    let responder = defer(context, component, true).await?;
    let actor = responder.actor(presser);
    let text = match data.core.cancel_job(&actor, &job).await {
        Ok(Cancelled::Now) => "Cancelled: it left the line, and nothing was charged.",
        Ok(Cancelled::BeforeItStarts) => "Cancelling: it leaves the line before it starts, and nothing is charged.",
        Ok(Cancelled::TooLate) => "Too late to cancel: the model is already drawing it.",
        Ok(Cancelled::NotFound) => "That job has already finished.",
        Err(error) => return work::fail(&responder, &error).await,
    };
    responder.finish(crate::respond::Outgoing::text(text)).await
}
