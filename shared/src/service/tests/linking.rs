//! A Discord user who links a web account is one person from then on: buttons on results
//! made before the link act on the moved images (owner-only ones for that person alone),
//! their defaults apply to the web account, and the day's quota is one between both, however
//! often they link and unlink.

use super::*;
use crate::gallery::Variant;
use crate::oidc::SignedInUser;
use crate::preferences::PreferenceChange;

const DISCORD_ID: u64 = 1;

fn web_user(subject: &str) -> SignedInUser {
    SignedInUser {
        discord: None,
        subject: subject.into(),
        username: format!("user-{subject}"),
        email: None,
        name: None,
        owner: Owner::web_account(subject).unwrap(),
    }
}

fn web_actor(user: &SignedInUser) -> Actor {
    Actor::new(user.owner.clone(), Origin::Web)
}

/// The actor a Discord user is, as the bot makes one: their web account's owner once linked.
async fn discord_actor(core: &Atelier, discord_user_id: u64) -> Actor {
    let owner = core.owner_for_discord(discord_user_id).await.unwrap();
    Actor::new(owner, Origin::Discord { guild_id: Some(1), channel_id: 70, message_id: None })
}

/// Runs `/link` and confirms it on the web, as `user`.
async fn link(core: &Atelier, discord_user_id: u64, user: &SignedInUser) {
    let LinkStart::Issued(token) = core.start_link(discord_user_id, "person").await.unwrap() else {
        panic!("{discord_user_id} is linked already");
    };
    core.consume_link(token.token(), user).await.unwrap();
}

/// One small demo image for `actor`, or the refusal.
async fn make(core: &Atelier, actor: &Actor) -> Result<Vec<Kept>> {
    let fields = GenerationFields { prompt: "a lighthouse".into(), size: Some("256x256".into()), ..Default::default() };
    core.generate(actor, &core.plan_generation(actor, &fields).await.unwrap()).await
}

fn is_over_quota(outcome: Result<Vec<Kept>>) -> bool {
    matches!(&outcome, Err(crate::Error::Busy(message)) if message.contains("today's 3") || message.contains("today's 6"))
}

#[tokio::test]
async fn a_button_made_before_linking_acts_on_the_moved_image_for_the_linked_person_only() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    // What a button under an earlier result names: the Discord owner and the image.
    let image = made_by(&core, &discord_actor(&core, DISCORD_ID).await).await;
    assert_eq!(image.owner, Owner::discord(DISCORD_ID));
    let alice = web_user("alice");
    link(&core, DISCORD_ID, &alice).await;
    let linked = discord_actor(&core, DISCORD_ID).await;
    assert_eq!(linked.owner, alice.owner, "a linked Discord user acts as their web account");

    let record = core.image_record(&image).await.unwrap();
    assert_eq!(record.owner, alice.owner, "the record is found in the gallery the image moved to");
    assert!(core.image_file(&image, Variant::Full).await.unwrap().0.starts_with(b"\x89PNG"));
    core.image_file(&image, Variant::Thumbnail).await.unwrap();

    // Variations: the moved image is the linked person's own, so it is the result's parent.
    let fields = EditFields { mode: "variation".into(), ..EditFields::default() };
    let plan = core.plan_edit(&linked, EditSource::Gallery(image.clone()), None, &fields).await.unwrap();
    assert_eq!(plan.parent(), Some(image.id));
    let child = core.edit(&linked, &plan).await.unwrap();
    assert_eq!(child[0].record.parent, Some(image.id));
    assert_eq!(core.image_children(&image).await.unwrap().len(), 1);

    // Someone else may work from it, for themselves, and may not delete it.
    let stranger = person(2);
    let theirs = core.plan_edit(&stranger, EditSource::Gallery(image.clone()), None, &fields).await.unwrap();
    assert_eq!(theirs.parent(), None);
    let refused = core.delete_image(&stranger, &image).await.unwrap_err();
    assert!(refusal_text(refused).contains("only the person who made this image"));
    assert!(core.image_record(&image).await.is_ok(), "a refused delete changes nothing");

    core.delete_image(&linked, &image).await.unwrap();
    assert!(matches!(core.image_record(&image).await, Err(crate::Error::NotFound(_))));
    let web_gallery = core.gallery_page(&web_actor(&alice), &ListFilter::default(), None, 10).await.unwrap();
    assert_eq!(web_gallery.records.len(), 1, "only the variation is left: {:?}", web_gallery.records);
}

#[tokio::test]
async fn after_unlinking_earlier_buttons_find_the_images_that_stayed_in_the_web_gallery() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let image = made_by(&core, &discord_actor(&core, DISCORD_ID).await).await;
    let alice = web_user("alice");
    link(&core, DISCORD_ID, &alice).await;
    core.unlink_discord(DISCORD_ID).await.unwrap();
    let unlinked = discord_actor(&core, DISCORD_ID).await;
    assert_eq!(unlinked.owner, Owner::discord(DISCORD_ID));

    assert_eq!(core.image_record(&image).await.unwrap().owner, alice.owner, "the images stay in the web gallery");
    let fields = EditFields { mode: "variation".into(), ..EditFields::default() };
    let plan = core.plan_edit(&unlinked, EditSource::Gallery(image.clone()), None, &fields).await.unwrap();
    assert_eq!(plan.parent(), None, "worked from like anyone's image, it is no longer in their gallery");

    let refused = core.delete_image(&unlinked, &image).await.unwrap_err();
    assert!(refusal_text(refused).contains("delete it there"));
    core.delete_image(&web_actor(&alice), &image).await.unwrap();
    assert!(matches!(core.image_record(&image).await, Err(crate::Error::NotFound(_))));
}

#[tokio::test]
async fn a_refused_prompt_or_a_job_from_before_linking_is_the_linked_persons_to_appeal_or_cancel() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let before = discord_actor(&core, DISCORD_ID).await;
    let fields = GenerationFields { prompt: "a storm at sea".into(), ..Default::default() };
    let refused = Owned::new(before.owner.clone(), core.hold_refused(&before, &fields).await.unwrap());
    let job = before.own(JobId::parse("01JF0000000000000000000000").unwrap());
    link(&core, DISCORD_ID, &web_user("alice")).await;
    let (linked, stranger) = (discord_actor(&core, DISCORD_ID).await, person(2));

    let by_stranger = core.appeal_held(&stranger, &refused).await.unwrap_err();
    assert!(refusal_text(by_stranger).contains("only the person whose prompt was refused"));
    // The linked person gets the request back to run with its appeal (which cannot pass here:
    // this core has no reviewer).
    let Ok(HeldAppeal::Generation { plan, .. }) = core.appeal_held(&linked, &refused).await else {
        panic!("the linked person was refused their own refused request")
    };
    let by_linked = core.generate_appealed(&linked, &plan, &crate::jobs::no_progress).await.unwrap_err();
    assert!(matches!(&by_linked, crate::Error::Blocked(refused) if !refused.appealable), "{by_linked:?}");

    let by_stranger = core.cancel_job(&stranger, &job).await.unwrap_err();
    assert!(refusal_text(by_stranger).contains("only the person who asked"));
    assert_eq!(core.cancel_job(&linked, &job).await.unwrap(), crate::jobs::Cancelled::NotFound);
}

#[tokio::test]
async fn discord_defaults_apply_to_the_linked_account_and_stay_with_the_discord_user_after_unlinking() {
    let folder = tempfile::tempdir().unwrap();
    let core = core(folder.path()).await;
    let alice = web_user("alice");
    let set = |aspect: &str, style: Option<&str>| PreferenceChange {
        aspect: Some(aspect.into()),
        style: style.map(String::from),
        private_results: Some(aspect == "16:9"),
        ..PreferenceChange::default()
    };
    core.change_preferences(&Owner::discord(DISCORD_ID), set("16:9", None)).await.unwrap();
    core.change_preferences(&alice.owner, set("1:1", Some("anime"))).await.unwrap();
    link(&core, DISCORD_ID, &alice).await;

    // Where both set one, the Discord default wins; the web account's others stay.
    let linked = discord_actor(&core, DISCORD_ID).await;
    let defaults = core.preferences(&linked.owner).await.unwrap();
    assert_eq!(defaults.aspect.as_deref(), Some("16:9"));
    assert_eq!(defaults.style.as_deref(), Some("anime"));
    assert!(defaults.private_results);
    assert_eq!(core.preferences(&alice.owner).await.unwrap(), defaults, "one person, one set of defaults");

    core.change_preferences(&linked.owner, set("9:16", None)).await.unwrap();
    core.unlink_discord(DISCORD_ID).await.unwrap();
    let unlinked = discord_actor(&core, DISCORD_ID).await;
    let kept = core.preferences(&unlinked.owner).await.unwrap();
    assert_eq!(kept.aspect.as_deref(), Some("9:16"), "the Discord user keeps what they set while linked");
    assert_eq!(kept, core.preferences(&alice.owner).await.unwrap());
}

#[tokio::test]
async fn linking_unlinking_and_linking_again_never_gives_a_second_days_quota() {
    let folder = tempfile::tempdir().unwrap();
    let core = core_with(folder.path(), &[("ATELIER_DAILY_IMAGE_QUOTA", "3")]).await;
    let alice = web_user("alice");
    let web = web_actor(&alice);
    for _ in 0..2 {
        make(&core, &discord_actor(&core, DISCORD_ID).await).await.unwrap();
    }
    link(&core, DISCORD_ID, &alice).await;
    make(&core, &web).await.unwrap();
    assert!(is_over_quota(make(&core, &web).await), "two in Discord and one on the web are the day's three");
    assert!(is_over_quota(make(&core, &discord_actor(&core, DISCORD_ID).await).await));

    core.unlink_discord(DISCORD_ID).await.unwrap();
    let unlinked = discord_actor(&core, DISCORD_ID).await;
    assert!(is_over_quota(make(&core, &unlinked).await), "unlinking gives the Discord user no new quota");
    assert!(is_over_quota(make(&core, &web).await));

    link(&core, DISCORD_ID, &alice).await;
    assert!(is_over_quota(make(&core, &discord_actor(&core, DISCORD_ID).await).await));
    assert!(is_over_quota(make(&core, &web).await));
    assert_eq!(core.usage(&web_actor(&alice)).await.unwrap().images_today, 3, "each image counted once");
}

#[tokio::test]
async fn linking_again_counts_only_what_each_side_made_since_unlinking() {
    let folder = tempfile::tempdir().unwrap();
    let core = core_with(folder.path(), &[("ATELIER_DAILY_IMAGE_QUOTA", "6")]).await;
    let alice = web_user("alice");
    let web = web_actor(&alice);
    for _ in 0..2 {
        make(&core, &discord_actor(&core, DISCORD_ID).await).await.unwrap();
    }
    link(&core, DISCORD_ID, &alice).await;
    make(&core, &web).await.unwrap();
    core.unlink_discord(DISCORD_ID).await.unwrap();
    assert_eq!(core.usage(&discord_actor(&core, DISCORD_ID).await).await.unwrap().images_today, 3);

    // Apart, each side makes one more: the person has made five.
    make(&core, &discord_actor(&core, DISCORD_ID).await).await.unwrap();
    make(&core, &web).await.unwrap();
    link(&core, DISCORD_ID, &alice).await;
    assert_eq!(core.usage(&web_actor(&alice)).await.unwrap().images_today, 5);
    make(&core, &discord_actor(&core, DISCORD_ID).await).await.unwrap();
    assert!(is_over_quota(make(&core, &web).await));
}
