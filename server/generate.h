#pragma once
// The generation routes' shared half: submit one scheduler request per
// choice, then answer either one JSON object or a stream of SSE chunks in
// the chat.completion / text_completion shapes.
#include <cstdint>
#include <string>
#include <vector>

#include "server/openai_request.h"
#include "server/server.h"

namespace kiln::server {

enum class ApiKind { Chat, Completion };

struct ChoicePrompt {
    std::vector<int32_t> tokens;
    std::string echo;  // completions with echo: text put before the answer
};

// One choice per (prompt, n). Throws ApiError before anything is sent
// (context overflow 400, full queue 503); errors later go into the stream.
void respond_generation(const std::shared_ptr<Engine>& engine, ApiKind kind, const GenerateParams& params,
                        const std::vector<ChoicePrompt>& prompts, httplib::Response& res);

}  // namespace kiln::server
