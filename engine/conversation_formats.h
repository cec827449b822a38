#pragma once
// Chat formats kiln knows by name, for models whose GGUF carries no
// tokenizer.chat_template (or when the user picks one with --chat-template-name).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// A chat template plus what a template cannot say: the text that ends a turn when
// the format has no end-of-turn token the vocabulary marks.
struct ChatFormat {
    std::string name;               // "model", a built-in name, or the template file's path
    std::string source;             // Jinja
    std::vector<std::string> stop;  // stop strings for generation
};

// "plain": a transcript ("{system}\n\nUser: ...\nAssistant: ...") that any base model
// can continue; answers end at EOS or at the next "\nUser:".
// "chatml": <|im_start|>role\n...<|im_end|> (Qwen, Hermes, many fine-tunes).
// "llama2": <s>[INST] <<SYS>>...<</SYS>> ... [/INST] answer </s>.
// "llama3": <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>.
std::optional<ChatFormat> builtin_chat_format(std::string_view name);
std::vector<std::string> builtin_chat_format_names();

}  // namespace kiln
