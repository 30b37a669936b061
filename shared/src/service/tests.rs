//! The rules the core enforces for whoever acts, proved without Discord or HTTP: who may
//! delete, appeal and cancel, whose gallery gets an edit's lineage, that a person's defaults
//! fill in every request and an edit stays in its parent's session, how sessions are renamed
//! and deleted, and that two messages answered at once in one conversation both stay.
//! `linking` proves that a Discord user who links a web account stays one person: earlier
//! buttons, defaults and the day's quota. `publishing` proves what the CDN in front of the
//! public pages is told when an image stops being public.

mod linking;
mod publishing;

use super::*;
use crate::chat::{ChatMessage, ChatMode};
use crate::gallery::{ListFilter, Origin, Owner, SessionName};
use crate::preferences::PreferenceChange;
use crate::request::{AspectRatio, EditFields, GenerationFields, Shape};
use crate::startup;

/// A core on the demo engine with a folder store of its own.
async fn core(folder: &std::path::Path) -> Atelier {
    core_with(folder, &[]).await
}

/// [`core`] with more settings.
async fn core_with(folder: &std::path::Path, settings: &[(&str, &str)]) -> Atelier {
    startup::demo_core_in(folder, settings).await.unwrap()
}

fn person(id: u64) -> Actor {
    Actor::new(Owner::discord(id), Origin::Cli)
}

/// One small demo image in `actor`'s gallery.
async fn made_by(core: &Atelier, actor: &Actor) -> ImageRef {
    let fields = GenerationFields { prompt: "a lighthouse".into(), size: Some("256x256".into()), ..Default::default() };
    let kept = core.generate(actor, &core.plan_generation(actor, &fields).await.unwrap()).await.unwrap();
    actor.own(kept[0].record.id)
}

fn refusal_text(error: crate::Error) -> String {
    assert!(matches!(error, crate::Error::Invalid(_)), "{error:?}");
    error.to_string()
}

#[tokio::test]
async fn only_the_owner_deletes_an_image() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let (owner, stranger) = (person(1), person(2));
    let image = made_by(&core, &owner).await;

    let refused = core.delete_image(&stranger, &image).await.unwrap_err();
    assert!(refusal_text(refused).contains("only the person who made this image"));
    assert!(core.image_record(&image).await.is_ok(), "a refused delete changes nothing");

    core.delete_image(&owner, &image).await.unwrap();
    assert!(matches!(core.image_record(&image).await, Err(crate::Error::NotFound(_))));
}

#[tokio::test]
async fn an_edit_descends_from_its_source_only_in_the_sources_owners_gallery() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let (owner, stranger) = (person(1), person(2));
    let image = made_by(&core, &owner).await;
    let fields = EditFields { mode: "variation".into(), ..EditFields::default() };

    let own = core.plan_edit(&owner, EditSource::Gallery(image.clone()), None, &fields).await.unwrap();
    assert_eq!(own.parent(), Some(image.id));
    let theirs = core.plan_edit(&stranger, EditSource::Gallery(image.clone()), None, &fields).await.unwrap();
    assert_eq!(theirs.parent(), None, "someone else's image is worked from, not adopted");

    let kept = core.edit(&stranger, &theirs).await.unwrap();
    assert_eq!(kept[0].record.owner, stranger.owner, "the result is the actor's");
    assert_eq!(kept[0].record.parent, None);
    assert!(core.image_children(&image).await.unwrap().is_empty(), "the owner's lineage is untouched");
    let mine = core.edit(&owner, &own).await.unwrap();
    assert_eq!(mine[0].record.parent, Some(image.id));

    let (bytes, _) = core.image_file(&image, crate::gallery::Variant::Full).await.unwrap();
    let both = EditSource::choose(Some(bytes), Some(image.clone())).unwrap_err();
    assert!(both.to_string().contains("not both"), "{both}");
    assert!(EditSource::choose(None, None).unwrap().is_none());
}

#[tokio::test]
async fn only_the_person_refused_may_appeal_and_anyone_shown_a_suggestion_may_use_it() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let (owner, stranger) = (person(1), person(2));
    let fields = GenerationFields { prompt: "a storm at sea".into(), ..Default::default() };

    let refused = Owned::new(owner.owner.clone(), core.hold_refused(&owner, &fields).await.unwrap());
    let by_stranger = core.appeal_held(&stranger, &refused).await.unwrap_err();
    assert!(refusal_text(by_stranger).contains("only the person whose prompt was refused"));
    // The owner gets the request back, to run with its appeal (this core has no reviewer, so
    // the appeal cannot pass); the kept request is then let go.
    let Ok(HeldAppeal::Generation { plan }) = core.appeal_held(&owner, &refused).await else {
        panic!("the owner's refused generation was not handed back")
    };
    assert_eq!(plan.request().prompt.as_str(), "a storm at sea");
    let by_owner = core.generate_appealed(&owner, &plan, &crate::jobs::no_progress).await.unwrap_err();
    assert!(matches!(&by_owner, crate::Error::Blocked(refused) if !refused.appealable), "{by_owner:?}");
    assert!(matches!(core.appeal_held(&owner, &refused).await, Err(crate::Error::NotFound(_))));

    let suggested = Owned::new(owner.owner.clone(), core.hold_request(&owner.owner, &fields).await.unwrap());
    assert_eq!(core.held_request(&suggested).await.unwrap().prompt, "a storm at sea");
}

#[tokio::test]
async fn only_the_person_who_asked_cancels_a_job() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let (owner, stranger) = (person(1), person(2));
    let job = owner.own(JobId::parse("01JF0000000000000000000000").unwrap());
    let refused = core.cancel_job(&stranger, &job).await.unwrap_err();
    assert!(refusal_text(refused).contains("only the person who asked"));
    assert_eq!(core.cancel_job(&owner, &job).await.unwrap(), crate::jobs::Cancelled::NotFound);
}

#[tokio::test]
async fn the_web_lists_only_the_actors_own_gallery() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let (owner, stranger) = (person(1), person(2));
    made_by(&core, &owner).await;
    assert_eq!(core.gallery_page(&owner, &ListFilter::default(), None, 10).await.unwrap().records.len(), 1);
    assert!(core.gallery_page(&stranger, &ListFilter::default(), None, 10).await.unwrap().records.is_empty());
}

/// Reads an exchange to its end; the reply.
async fn finish(exchange: &mut Exchange) -> String {
    exchange.finish(|_| {}).await.unwrap();
    exchange.reply().to_string()
}

#[tokio::test]
async fn two_messages_answered_at_once_in_one_conversation_both_stay() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let owner = person(1);
    let conversation = Conversation::new(owner.owner.clone(), ChatMode::Assistant);
    let (first, second) = (ChatMessage::parse("first question").unwrap(), ChatMessage::parse("second").unwrap());
    // Both start from the same (empty) conversation, as two replicas answering at once would.
    let mut one = core.converse(&owner, "thread-1", conversation.clone(), &first).await.unwrap();
    let mut other = core.converse(&owner, "thread-1", conversation, &second).await.unwrap();
    tokio::join!(finish(&mut one), finish(&mut other));

    let kept = core.own_conversation(&owner, "thread-1").await.unwrap().unwrap();
    let said: Vec<&str> = kept.turns.iter().step_by(2).map(|turn| turn.text.as_str()).collect();
    assert_eq!(kept.turns.len(), 4, "{kept:?}");
    assert!(said.contains(&"first question") && said.contains(&"second"), "{said:?}");
    assert!(core.own_conversation(&person(2), "thread-1").await.unwrap().is_none(), "not someone else's");
}

#[tokio::test]
async fn a_kept_conversation_is_trimmed_to_its_newest_turns() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let owner = person(1);
    let mut conversation = Conversation::new(owner.owner.clone(), ChatMode::Assistant);
    for number in 0..Conversation::MAX_TURNS {
        conversation.push_exchange(&format!("question {number}"), "answer");
    }
    let mut exchange =
        core.converse(&owner, "thread-2", conversation, &ChatMessage::parse("the last").unwrap()).await.unwrap();
    let reply = finish(&mut exchange).await;
    let history = exchange.history_after();
    assert_eq!(history.len(), Conversation::MAX_TURNS);
    assert_eq!(history[history.len() - 2].text, "the last");
    assert_eq!(history[history.len() - 1].text, reply);
    let kept = core.own_conversation(&owner, "thread-2").await.unwrap().unwrap();
    assert_eq!(kept.turns, history, "the kept conversation and the API's history trim alike");
}

#[tokio::test]
async fn a_plan_fixes_the_seed_once_and_the_job_draws_with_it() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let fields = GenerationFields { prompt: "a lighthouse".into(), size: Some("256x256".into()), ..Default::default() };
    let plan = core.plan_generation(&person(1), &fields).await.unwrap();
    let seed = plan.request().seed.expect("a plan carries the seed it will be drawn with");
    let kept = core.generate(&person(1), &plan).await.unwrap();
    assert_eq!(kept[0].record.seed, seed);
    let again = core.generate(&person(1), &plan).await.unwrap();
    assert_eq!(again[0].image.bytes(), kept[0].image.bytes(), "the same plan draws the same picture");
}

fn session(name: &str) -> SessionName {
    SessionName::parse(name).unwrap()
}

/// `actor` acting in a session.
fn in_session(actor: &Actor, name: &str) -> Actor {
    Actor { session: Some(session(name)), ..actor.clone() }
}

#[tokio::test]
async fn a_persons_defaults_fill_in_what_any_request_of_theirs_leaves_out() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let owner = Owner::local_operator();
    let change = PreferenceChange {
        aspect: Some("16:9".into()),
        negative_prompt: Some("blur".into()),
        private_results: Some(true),
        ..PreferenceChange::default()
    };
    core.change_preferences(&owner, change).await.unwrap();
    let wide = Shape::Aspect(AspectRatio { width: 16, height: 9 });
    let bare = GenerationFields { prompt: "a harbour".into(), ..Default::default() };

    // The same owner through every front end: the command line, the web, Discord.
    for origin in [Origin::Cli, Origin::Web, Origin::Discord { guild_id: None, channel_id: 1, message_id: None }] {
        let actor = Actor::new(owner.clone(), origin);
        let plan = core.plan_generation(&actor, &bare).await.unwrap();
        assert_eq!(plan.request().shape, wide, "the default aspect is filled in for {:?}", actor.origin);
        assert_eq!(plan.request().negative_prompt.as_ref().map(|prompt| prompt.as_str()), Some("blur"));
        assert!(plan.private_results());
        assert_eq!(plan.fields().aspect.as_deref(), Some("16:9"), "the plan keeps the fields as filled in");
    }
    let actor = Actor::new(owner.clone(), Origin::Web);
    let kept = core.generate(&actor, &core.plan_generation(&actor, &bare).await.unwrap()).await.unwrap();
    assert_eq!(kept[0].record.parameters.shape, Some(wide), "the image is made with the default");
    assert!(kept[0].record.size.width > kept[0].record.size.height, "{}", kept[0].record.size);

    // What the request says wins over the default, and `none` leaves a default out this time.
    let explicit =
        GenerationFields { aspect: Some("1:1".into()), negative_prompt: Some("none".into()), ..bare.clone() };
    let plan = core.plan_generation(&actor, &explicit).await.unwrap();
    assert_eq!(plan.request().shape, Shape::default());
    assert_eq!(plan.request().negative_prompt, None);
    let sized = GenerationFields { size: Some("256x256".into()), ..bare.clone() };
    assert!(core.plan_generation(&actor, &sized).await.is_ok(), "a size given does not clash with the default aspect");

    // Someone else's defaults are their own.
    let plan = core.plan_generation(&person(2), &bare).await.unwrap();
    assert_eq!(plan.request().shape, Shape::default());
    assert!(!plan.private_results());
}

#[tokio::test]
async fn a_bad_default_is_refused_with_the_same_words_and_changes_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let owner = Owner::local_operator();
    core.change_preferences(&owner, PreferenceChange { aspect: Some("3:2".into()), ..Default::default() })
        .await
        .unwrap();
    let bad_aspect = PreferenceChange { aspect: Some("wide".into()), ..Default::default() };
    let refused = core.change_preferences(&owner, bad_aspect).await.unwrap_err();
    assert!(refusal_text(refused).contains("`wide` is not an aspect ratio: write it as W:H"));
    let bad_model = PreferenceChange { model: Some("dall-e".into()), ..Default::default() };
    let refused = core.change_preferences(&owner, bad_model).await.unwrap_err();
    assert!(refusal_text(refused).contains("`dall-e` is not a model that makes images here"));
    assert_eq!(core.preferences(&owner).await.unwrap().aspect.as_deref(), Some("3:2"), "nothing changed");
}

#[tokio::test]
async fn an_edit_keeps_its_parents_session_unless_another_is_given() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let owner = person(1);
    let parent = made_by(&core, &in_session(&owner, "trip")).await;
    let variation = EditFields { mode: "variation".into(), ..EditFields::default() };

    let plan = core.plan_edit(&owner, EditSource::Gallery(parent.clone()), None, &variation).await.unwrap();
    let kept = core.edit(&owner, &plan).await.unwrap();
    assert_eq!(kept[0].record.session, Some(session("trip")), "a variation stays in its parent's session");
    // Its own child too: the session follows the lineage.
    let child = owner.own(kept[0].record.id);
    let plan = core.plan_edit(&owner, EditSource::Gallery(child), None, &variation).await.unwrap();
    assert_eq!(core.edit(&owner, &plan).await.unwrap()[0].record.session, Some(session("trip")));

    let elsewhere = in_session(&owner, "home");
    let plan = core.plan_edit(&elsewhere, EditSource::Gallery(parent.clone()), None, &variation).await.unwrap();
    assert_eq!(core.edit(&elsewhere, &plan).await.unwrap()[0].record.session, Some(session("home")));

    // Someone else's image is worked from, but its session is not theirs to join.
    let stranger = person(2);
    let plan = core.plan_edit(&stranger, EditSource::Gallery(parent), None, &variation).await.unwrap();
    assert_eq!(core.edit(&stranger, &plan).await.unwrap()[0].record.session, None);
}

#[tokio::test]
async fn sessions_are_listed_renamed_and_deleted_and_their_images_stay() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let owner = person(1);
    let first = made_by(&core, &in_session(&owner, "trip")).await;
    made_by(&core, &in_session(&owner, "trip")).await;
    made_by(&core, &in_session(&owner, "home")).await;
    made_by(&core, &owner).await;
    made_by(&core, &in_session(&person(2), "trip")).await;

    let listed = core.gallery_sessions(&owner).await.unwrap();
    let names: Vec<(&str, usize)> = listed.iter().map(|summary| (summary.name.as_str(), summary.images)).collect();
    assert_eq!(names, [("home", 1), ("trip", 2)], "the most recently used first, with their images counted");

    assert_eq!(core.rename_session(&owner, &session("trip"), &session("Japan 2025")).await.unwrap(), 2);
    let renamed = ListFilter { session: Some(session("Japan 2025")), origin: None };
    assert_eq!(core.gallery_page(&owner, &renamed, None, 10).await.unwrap().records.len(), 2);
    assert_eq!(core.image_record(&first).await.unwrap().session, Some(session("Japan 2025")));
    let others = core.gallery_sessions(&person(2)).await.unwrap();
    assert_eq!(others[0].name, session("trip"), "another person's session of the same name is theirs");
    let gone = core.rename_session(&owner, &session("trip"), &session("again")).await.unwrap_err();
    assert!(
        matches!(&gone, crate::Error::NotFound(message) if message.contains("no session named `trip`")),
        "{gone:?}"
    );

    // Renaming into an existing session joins them, which is also how a rename stopped
    // midway (some images renamed, some not) is finished: by running it again.
    assert_eq!(core.rename_session(&owner, &session("home"), &session("Japan 2025")).await.unwrap(), 1);
    let listed = core.gallery_sessions(&owner).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].images, 3);

    assert_eq!(core.delete_session(&owner, &session("Japan 2025")).await.unwrap(), 3);
    assert!(core.gallery_sessions(&owner).await.unwrap().is_empty());
    let everything = core.gallery_page(&owner, &ListFilter::default(), None, 10).await.unwrap();
    assert_eq!(everything.records.len(), 4, "deleting a session keeps its images");
    assert!(everything.records.iter().all(|record| record.session.is_none()));
}

/// A submitted generation answers with its id at once, then shows where it is until its
/// images are kept; the store holds its final state for any replica.
#[tokio::test]
async fn a_submitted_job_is_followed_to_its_images_and_its_state_is_kept_for_other_replicas() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let (owner, stranger) = (person(1), person(2));
    let fields = GenerationFields { prompt: "a lighthouse".into(), size: Some("256x256".into()), ..Default::default() };
    let plan = core.plan_generation(&person(1), &fields).await.unwrap();

    let id = core.submit_generation(&owner, &plan, Appeal::No).await.unwrap();
    let job = owner.own(id);
    let mut updates = core.follow_job(&owner, &job).await.unwrap();
    let mut seen = Vec::new();
    while let Some(view) = updates.next().await {
        seen.push(view.unwrap());
    }
    let last = seen.last().unwrap();
    assert_eq!(last.summary, "a lighthouse");
    let JobState::Done { images } = &last.state else { panic!("not done: {seen:?}") };
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].owner, owner.owner);
    assert!(core.image_record(&owner.own(images[0].id)).await.is_ok(), "the image is in the gallery");
    assert!(seen.iter().all(|view| view.id == id));

    // Someone else cannot see it, even by its id.
    let theirs = Owned::new(owner.owner.clone(), id);
    assert!(refusal_text(core.job(&stranger, &theirs).await.unwrap_err()).contains("only the person who asked"));

    // Another replica (a second core over the same store) reads the final state.
    let mut written = None;
    for _ in 0..100 {
        let other = Atelier { watched: watched::WatchedJobs::default(), ..core.clone() };
        if let Ok(view) = other.job(&owner, &job).await
            && view.state.is_finished()
        {
            written = Some(view);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(written.as_ref().map(|view| &view.state), Some(&last.state));
}

/// A refusal at the safety gate is the job's end, with the reason; a refusal at admission
/// (the day's images used up) comes back at once and makes no job.
#[tokio::test]
async fn a_refused_job_says_why_and_a_quota_refusal_comes_back_at_submission() {
    let folder = tempfile::tempdir().unwrap();
    let core = core_with(folder.path(), &[("ATELIER_DAILY_IMAGE_QUOTA", "1")]).await;
    let owner = person(1);
    let plan = async |prompt: &str| {
        let fields = GenerationFields { prompt: prompt.into(), size: Some("256x256".into()), ..Default::default() };
        core.plan_generation(&person(1), &fields).await.unwrap()
    };

    let refused = core.submit_generation(&owner, &plan("csam").await, Appeal::No).await.unwrap();
    let mut updates = core.follow_job(&owner, &owner.own(refused)).await.unwrap();
    let mut last = None;
    while let Some(view) = updates.next().await {
        last = Some(view.unwrap());
    }
    let Some(JobState::Failed { reason, message, appealable, .. }) = last.map(|view| view.state) else {
        panic!("not failed")
    };
    assert_eq!(reason, FailureReason::Blocked);
    assert!(!appealable, "the community's own rules are not appealed");
    assert!(!message.is_empty());

    // The refusal gave its image back: one more fits today, then none.
    let made = core.submit_generation(&owner, &plan("a lighthouse").await, Appeal::No).await.unwrap();
    let mut updates = core.follow_job(&owner, &owner.own(made)).await.unwrap();
    while updates.next().await.is_some() {}
    let over = core.submit_generation(&owner, &plan("a second lighthouse").await, Appeal::No).await.unwrap_err();
    assert!(over.is_user_error(), "{over:?}");
}
