//! ChatML, the chat format of SmolLM2's instruction-tuned models: messages between special
//! tokens.

/// The special token that opens a message, followed by its role and a newline.
pub const IM_START: &str = "<|im_start|>";
/// The special token that closes a message (and SmolLM2-Instruct's end of generation).
pub const IM_END: &str = "<|im_end|>";
/// The special token that ends a document in SmolLM2's pre-training data.
pub const END_OF_TEXT: &str = "<|endoftext|>";
/// The system prompt that SmolLM2-Instruct's chat template puts first when the conversation
/// does not start with a `system` message.
pub const SMOLLM2_SYSTEM_PROMPT: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// The ChatML prompt of a conversation, as SmolLM2-Instruct's chat template writes it (the
/// `tokenizer.chat_template` of its GGUF file, a Jinja template, rendered here by hand):
///
/// ```text
/// {% for message in messages %}
///   {% if loop.first and messages[0]['role'] != 'system' %}
///     {{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}
///   {% endif %}
///   {{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}
/// {% endfor %}
/// {% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
/// ```
///
/// Each message is `(role, content)`, for example `("user", "What is the capital of
/// France?")`. If the first message is not a `system` message, [`SMOLLM2_SYSTEM_PROMPT`] comes
/// first as one; an empty conversation gets none. With `add_generation_prompt`, the prompt
/// ends by opening an `assistant` message, for the model to continue.
///
/// Roles and contents are copied as they are: a content holding `<|im_end|>` would close its
/// message early once tokenized with the special tokens on, exactly as with Hugging Face's
/// template, so text from untrusted users should be checked first.
///
/// ```
/// use sorted_data::chatml_prompt;
///
/// let prompt = chatml_prompt(&[("user", "What is the capital of France?")], true);
/// assert_eq!(
///     prompt,
///     "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
///      <|im_start|>user\nWhat is the capital of France?<|im_end|>\n\
///      <|im_start|>assistant\n"
/// );
/// // A system message of one's own replaces the default one.
/// let messages = [("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!")];
/// assert_eq!(
///     chatml_prompt(&messages, false),
///     "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
/// );
/// ```
pub fn chatml_prompt<R: AsRef<str>, C: AsRef<str>>(messages: &[(R, C)], add_generation_prompt: bool) -> String {
    let mut prompt = String::new();
    let mut push_message = |role: &str, content: &str| {
        for part in [IM_START, role, "\n", content, IM_END, "\n"] {
            prompt.push_str(part);
        }
    };
    if let Some((role, _)) = messages.first()
        && role.as_ref() != "system"
    {
        push_message("system", SMOLLM2_SYSTEM_PROMPT);
    }
    for (role, content) in messages {
        push_message(role.as_ref(), content.as_ref());
    }
    if add_generation_prompt {
        prompt.push_str(IM_START);
        prompt.push_str("assistant\n");
    }
    prompt
}
