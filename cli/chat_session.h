#pragma once
// One `kiln chat` conversation on a loaded model: answering a message (streamed,
// the history kept in the KV cache so only new tokens are evaluated) and the
// slash commands.
#include <cstdio>
#include <string>

#include "cli/chat_terminal.h"
#include "cli/loaded_model.h"
#include "engine/conversation.h"
#include "engine/generation.h"

namespace kiln::cli {

struct ChatSettings {
    SamplingOptions sampling;
    int n_predict = -1;  // tokens per answer; -1: until the model stops or the context is full
    bool interactive = true;  // false: one answer for a pipe, notices without chat hints
};

class ChatSession {
public:
    // `out` receives the answers; notices and errors go to stderr.
    ChatSession(LoadedModel& model, Conversation& conversation, ChatSettings settings, Palette palette, FILE* out);

    // Adds `message` as a user turn and streams the answer to `out`. Ctrl-C (an
    // InterruptGuard alive) stops it; the partial answer stays in the conversation.
    // A message that cannot fit the context is refused with a notice and not kept.
    void answer(const std::string& message);

    // A line starting with '/'. Returns false for /exit. Errors are printed, never thrown
    // (a typo must not end the chat).
    bool command(const std::string& line);

private:
    void notice(const std::string& text) const;
    void error(const std::string& text) const;
    void set(const std::string& args);
    void stats() const;

    LoadedModel& model_;
    Conversation& conversation_;
    Session session_;
    ChatSettings settings_;
    Palette palette_;
    FILE* out_;
    bool overflow_noticed_ = false;
    GenerationResult last_;
    bool have_last_ = false;
    int64_t total_prompt_evaluated_ = 0;
};

}  // namespace kiln::cli
