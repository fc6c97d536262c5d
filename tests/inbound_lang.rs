//! Several languages (issue 14): a route with `lang = "fr"` runs the same
//! menu flow, and the caller hears the French prompts from prompts/fr/.

mod common;

use common::audio::{align, to_f32, Heard};
use common::caller::{prompt, Caller, SIGNALLING};
use common::server::{repo, Rivr, RivrConfig};
use common::sipp::CallSpec;

#[test]
fn a_french_route_plays_the_french_prompts_of_the_same_flow() {
    require_sipp!();
    let route = format!(
        "[[route]]\nnumber = \"1001\"\nscript = {:?}\nlang = \"fr\"\n",
        repo().join("scripts/main_menu.rhai").display().to_string()
    );
    let rivr = Rivr::start(
        "lang",
        RivrConfig {
            extra_tables: route,
            ..RivrConfig::default()
        },
    );
    let mut caller = Caller::answered(
        &rivr,
        "lang",
        CallSpec {
            scenario: "uac_hangup.xml",
            number: "1001",
            hold_ms: 4000,
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(SIGNALLING);
    let heard = Heard::decode(&caller.peer.packets(), 0);
    // The first 3 s of each menu: what a caller hears before pressing.
    let head = |name: &str| to_f32(&prompt(name).pcm_8k()[..24_000]);
    let (_, french) = align(&heard.samples, &head("fr/main_menu"));
    let (_, english) = align(&heard.samples, &head("main_menu"));
    println!("[lang] fr/main_menu NCC = {french:.4}; main_menu (English) NCC = {english:.4}");
    assert!(
        french >= 0.9,
        "the French menu was not heard: NCC {french:.4}"
    );
    assert!(
        english < 0.5,
        "the English menu was heard on the French route: NCC {english:.4}"
    );
}
