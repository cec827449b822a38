// kiln chat: an interactive chat on the terminal, or one answer to stdin when
// stdin is not a terminal (pipes and scripts).
#include <unistd.h>

#include <clocale>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/chat_line_editor.h"
#include "cli/chat_load.h"
#include "cli/chat_session.h"
#include "cli/chat_state.h"
#include "cli/chat_terminal.h"
#include "cli/commands.h"
#include "formats/gguf_keys.h"

namespace kiln::cli {
namespace {

std::string read_all(std::istream& in) {
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The model's own template, unless the user chose one; a plain transcript for
// models that ship none (base models, the test models).
ChatFormat choose_format(const Model& model, const std::string& template_file, const std::string& template_name) {
    if (!template_file.empty()) {
        std::ifstream in(template_file, std::ios::binary);
        if (!in) throw UsageError("--chat-template: cannot read " + template_file);
        return ChatFormat{template_file, read_all(in), {}};
    }
    if (!template_name.empty()) {
        if (auto f = builtin_chat_format(template_name)) return *f;
        std::string names;
        for (const auto& n : builtin_chat_format_names()) names += (names.empty() ? "" : ", ") + n;
        throw UsageError("--chat-template-name: unknown format '" + template_name + "' (known: " + names + ")");
    }
    if (auto source = model.gguf().get_string(gguf_keys::kTokChatTemplate); source && !source->empty())
        return ChatFormat{"model", *source, {}};
    std::fprintf(stderr,
                 "note: this model has no chat template, so the chat is a plain User:/Assistant: transcript "
                 "(--chat-template FILE or --chat-template-name NAME picks another)\n");
    return *builtin_chat_format("plain");
}

std::string resolve_model(const std::string& given) {
    if (!given.empty()) return given;
    if (auto last = last_model()) {
        if (std::filesystem::exists(*last)) return *last;
        throw UsageError("no model given, and the last one used (" + *last +
                         ") is gone: pass -m FILE.gguf");
    }
    throw UsageError("no model given: pass -m FILE.gguf (a GGUF model file); after that, `kiln chat` "
                     "alone reopens the last model used");
}

}  // namespace

int cmd_chat(const Args& args) {
    ModelOptions model_options;
    ChatSettings settings;
    std::string system_prompt, template_file, template_name;
    bool no_history = false;

    OptionParser parser("kiln chat [-m FILE] [options]   (stdin not a terminal: one answer to all of stdin)");
    parser.add_model_options(model_options);
    parser.value({"-n", "--n-predict"}, "N", "tokens per answer; -1 = until the model stops (default -1)",
                 [&](const std::string& v) { settings.n_predict = parse_int("--n-predict", v, -1, 1 << 30); });
    parser.value({"--system"}, "TEXT", "system prompt", [&](const std::string& v) { system_prompt = v; });
    parser.value({"--chat-template"}, "FILE", "use this Jinja chat template instead of the model's",
                 [&](const std::string& v) { template_file = v; });
    parser.value({"--chat-template-name"}, "NAME", "use a built-in format: plain, chatml, llama2, llama3 (models without a template get plain)",
                 [&](const std::string& v) { template_name = v; });
    parser.flag({"--no-history"}, "do not read or write the input history file", [&] { no_history = true; });
    parser.add_sampling_options(settings.sampling);
    std::vector<std::string> positional;
    if (!parser.parse(args, &positional)) return 0;
    if (positional.size() > 1) throw UsageError("unexpected argument '" + positional[1] + "' (see --help)");
    if (!positional.empty()) {
        if (!model_options.model_path.empty()) throw UsageError("give the model once: -m FILE or FILE, not both");
        model_options.model_path = positional[0];
    }
    model_options.model_path = resolve_model(model_options.model_path);

    const bool interactive = ::isatty(STDIN_FILENO) == 1;
    std::string piped;
    if (!interactive) {
        piped = read_all(std::cin);
        if (piped.find_first_not_of(" \t\r\n") == std::string::npos)
            throw UsageError("stdin is empty: pipe the message in, e.g. echo 'Hello' | kiln chat -m FILE");
    }

    LoadedModel model = load_with_progress(model_options, interactive && ::isatty(STDERR_FILENO) == 1);
    remember_last_model(model_options.model_path);
    Conversation conversation(choose_format(*model.model, template_file, template_name), *model.tokenizer);
    conversation.set_system(system_prompt);

    if (!interactive) {
        settings.interactive = false;
        ChatSession chat(model, conversation, settings, Palette::make(false), stdout);
        chat.answer(piped);
        return 0;
    }

    // libedit reads multibyte input by the locale's character set.
    std::setlocale(LC_CTYPE, "");
    const Palette palette = Palette::make(colour_enabled(stdout));
    ChatSession chat(model, conversation, settings, palette, stdout);
    LineEditor editor(no_history ? std::string() : history_path().string(), palette);
    InterruptGuard interrupts(*palette.reset != '\0');
    std::fprintf(stderr, "%sType a message, /help for commands, Ctrl-D to leave.%s\n", palette.notice, palette.reset);
    while (auto message = editor.read_message()) {
        if (message->find_first_not_of(" \t\r\n") == std::string::npos) continue;
        if (message->starts_with("/") && !message->starts_with("//")) {
            if (!chat.command(*message)) break;
            continue;
        }
        chat.answer(message->starts_with("//") ? message->substr(1) : *message);
    }
    std::fputs(palette.reset, stdout);
    std::fflush(stdout);
    return 0;
}

}  // namespace kiln::cli
