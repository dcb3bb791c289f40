//! chatml_prompt: SmolLM2-Instruct's chat template, rendered by hand.

use sorted_data::{IM_END, IM_START, SMOLLM2_SYSTEM_PROMPT, chatml_prompt};

#[test]
fn the_default_system_prompt_comes_first_unless_the_conversation_has_one() {
    let prompt = chatml_prompt(&[("user", "Hi")], false);
    assert_eq!(prompt, format!("{IM_START}system\n{SMOLLM2_SYSTEM_PROMPT}{IM_END}\n{IM_START}user\nHi{IM_END}\n"));
    let own = chatml_prompt(&[("system", "Be terse."), ("user", "Hi")], false);
    assert_eq!(own, "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    // Only the first message counts: a later system message is just a message.
    let late = chatml_prompt(&[("user", "Hi"), ("system", "x")], false);
    assert_eq!(late.matches("<|im_start|>system\n").count(), 2);
    assert!(late.starts_with(&format!("<|im_start|>system\n{SMOLLM2_SYSTEM_PROMPT}")));
}

#[test]
fn the_generation_prompt_opens_an_assistant_message() {
    let messages = [("user".to_owned(), "2+2?".to_owned()), ("assistant".to_owned(), "4".to_owned())];
    let prompt = chatml_prompt(&messages, true);
    assert!(prompt.ends_with("<|im_start|>assistant\n4<|im_end|>\n<|im_start|>assistant\n"), "{prompt:?}");
    assert_eq!(chatml_prompt(&messages, false), prompt.strip_suffix("<|im_start|>assistant\n").unwrap());
    // An empty conversation gets no system prompt, as the template's loop never runs.
    let none: [(&str, &str); 0] = [];
    assert_eq!(chatml_prompt(&none, true), "<|im_start|>assistant\n");
    assert_eq!(chatml_prompt(&none, false), "");
}

#[test]
fn contents_are_copied_as_they_are() {
    let prompt = chatml_prompt(&[("system", ""), ("user", "  two\nlines  ")], false);
    assert_eq!(prompt, "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n  two\nlines  <|im_end|>\n");
}
