#include "engine/conversation_formats.h"

namespace kiln {
namespace {

// Rendered with trim_blocks/lstrip_blocks: a newline right after "%}" is dropped,
// one after "}}" is kept, so each line's text ends in "}}" plus its newline.
constexpr std::string_view kPlain =
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}Assistant: {{ message['content'] }}\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}";

constexpr std::string_view kChatml =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

constexpr std::string_view kLlama2 =
    "{% if messages[0]['role'] == 'system' %}"
    "{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = '' %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if loop.index0 == 0 and system_message != '' %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content + ' ' + eos_token }}{% endif %}"
    "{% endfor %}";

constexpr std::string_view kLlama3 =
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

}  // namespace

std::optional<ChatFormat> builtin_chat_format(std::string_view name) {
    if (name == "plain") return ChatFormat{"plain", std::string(kPlain), {"\nUser:"}};
    if (name == "chatml") return ChatFormat{"chatml", std::string(kChatml), {"<|im_end|>"}};
    if (name == "llama2") return ChatFormat{"llama2", std::string(kLlama2), {}};
    if (name == "llama3") return ChatFormat{"llama3", std::string(kLlama3), {"<|eot_id|>"}};
    return std::nullopt;
}

std::vector<std::string> builtin_chat_format_names() { return {"plain", "chatml", "llama2", "llama3"}; }

}  // namespace kiln
