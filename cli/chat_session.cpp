#include "cli/chat_session.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace kiln::cli {
namespace {

constexpr const char* kHelp =
    "/help              this help\n"
    "/system TEXT       set the system prompt (without TEXT: show it)\n"
    "/reset             start a new conversation (the system prompt stays)\n"
    "/save FILE         save the conversation as JSON (OpenAI messages)\n"
    "/load FILE         continue a conversation saved with /save\n"
    "/set NAME VALUE    change a setting: temp, top-k, top-p, min-p, repeat-penalty,\n"
    "                   repeat-last-n, presence-penalty, frequency-penalty, seed (or\n"
    "                   'random'), n-predict (-1: no limit); without NAME: show them\n"
    "/stats             tokens in the context, the last answer's speed\n"
    "/exit              leave (or Ctrl-D, or Ctrl-C at an empty prompt)\n"
    "\n"
    "Enter sends. End a line with \\ to go on writing, or wrap lines in \"\"\".\n"
    "Ctrl-C stops an answer. Start a message with // to send one beginning with /.\n";

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(first, last - first + 1));
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

ChatSession::ChatSession(LoadedModel& model, Conversation& conversation, ChatSettings settings, Palette palette,
                         FILE* out)
    : model_(model),
      conversation_(conversation),
      session_(*model.context, *model.tokenizer),
      settings_(std::move(settings)),
      palette_(palette),
      out_(out) {}

void ChatSession::notice(const std::string& text) const {
    std::fflush(out_);
    std::fprintf(stderr, "%s%s%s\n", palette_.notice, text.c_str(), palette_.reset);
    std::fflush(stderr);
}

void ChatSession::error(const std::string& text) const {
    std::fflush(out_);
    std::fprintf(stderr, "%serror: %s%s\n", palette_.error, text.c_str(), palette_.reset);
    std::fflush(stderr);
}

void ChatSession::answer(const std::string& message) {
    conversation_.add("user", message);
    const int64_t n_ctx = model_.context->n_ctx();
    // Keep room for the answer: -n tokens when set, at most a quarter of the context.
    int64_t reserve = n_ctx / 4;
    if (settings_.n_predict > 0) reserve = std::min<int64_t>(reserve, settings_.n_predict);
    reserve = std::max<int64_t>(reserve, 1);
    const int64_t limit = n_ctx - reserve;
    Conversation::Prompt prompt;
    try {
        prompt = conversation_.prompt(limit, limit / 2);
    } catch (const std::exception& e) {  // ConversationError, ChatTemplateError
        conversation_.pop_last();
        error(e.what());
        return;
    }
    if (prompt.dropped_turns > 0 && !overflow_noticed_) {
        notice("(the conversation outgrew the context of " + std::to_string(n_ctx) +
               " tokens: the oldest turns are dropped from now on, the system prompt is kept; -c sets the size)");
        overflow_noticed_ = true;
    }

    GenerationRequest request;
    request.prompt = std::move(prompt.tokens);
    request.max_tokens = settings_.n_predict;
    request.sampling = to_sampling_params(settings_.sampling);
    request.stop = conversation_.format().stop;

    bool started = false;  // the answer's leading whitespace is not shown
    InterruptGuard::clear();
    GenerationResult r = session_.generate(request, [&](std::string_view text) {
        if (!started) {
            const auto first = text.find_first_not_of(" \t\r\n");
            if (first == std::string_view::npos) return !InterruptGuard::raised();
            text.remove_prefix(first);
            started = true;
        }
        std::fwrite(text.data(), 1, text.size(), out_);
        std::fflush(out_);
        return !InterruptGuard::raised();
    });
    InterruptGuard::clear();
    conversation_.add("assistant", trim(r.text));
    last_ = r;
    have_last_ = true;
    total_prompt_evaluated_ += r.n_prompt_evaluated;

    std::fputc('\n', out_);
    if (r.finish == FinishReason::Cancelled) {
        notice("(stopped)");
    } else if (r.finish == FinishReason::Length) {
        if (settings_.n_predict >= 0 && int64_t(r.tokens.size()) >= settings_.n_predict)
            notice("(the answer reached the limit of " + std::to_string(settings_.n_predict) + " tokens; " +
                   (settings_.interactive ? "/set n-predict" : "-n") + " changes it)");
        else
            notice(settings_.interactive ? "(the context is full: the next message drops the oldest turns)"
                                         : "(the answer filled the context; -c raises its size)");
    }
    if (settings_.interactive) std::fputc('\n', out_);  // a blank line between exchanges
    std::fflush(out_);
}

bool ChatSession::command(const std::string& line) {
    const auto space = line.find_first_of(" \t\n");
    const std::string name = line.substr(0, space);
    const std::string rest = space == std::string::npos ? "" : trim(std::string_view(line).substr(space));
    try {
        if (name == "/exit" || name == "/quit" || name == "/bye") return false;
        if (name == "/help" || name == "/?") {
            std::fputs(kHelp, out_);
        } else if (name == "/system") {
            if (rest.empty()) {
                std::fprintf(out_, "%s\n", conversation_.system().empty() ? "(no system prompt)" : conversation_.system().c_str());
            } else {
                conversation_.set_system(rest);
                notice("(system prompt set; it applies from the next message)");
            }
        } else if (name == "/reset" || name == "/clear") {
            conversation_.clear();
            session_.reset();
            overflow_noticed_ = false;
            have_last_ = false;
            notice("(new conversation)");
        } else if (name == "/save") {
            if (rest.empty()) throw std::runtime_error("/save needs a file name: /save FILE");
            std::ofstream out(rest, std::ios::binary);
            const std::string json = conversation_.to_json().dump(2) + "\n";
            out << json;
            out.close();
            if (!out) throw std::runtime_error("cannot write " + rest);
            notice("(saved " + std::to_string(conversation_.messages().size()) + " messages to " + rest + ")");
        } else if (name == "/load") {
            if (rest.empty()) throw std::runtime_error("/load needs a file name: /load FILE");
            const std::string text = read_file(rest);
            nlohmann::json j;
            try {
                j = nlohmann::json::parse(text);
            } catch (const nlohmann::json::exception& e) {
                throw std::runtime_error(rest + " is not JSON: " + e.what());
            }
            try {
                conversation_.load_json(j);
            } catch (const ConversationError& e) {
                throw std::runtime_error(rest + ": " + e.what());
            }
            overflow_noticed_ = false;
            notice("(loaded " + std::to_string(conversation_.messages().size()) + " messages from " + rest + ")");
        } else if (name == "/set") {
            set(rest);
        } else if (name == "/stats") {
            stats();
        } else {
            error("unknown command " + name + "; /help lists the commands");
        }
    } catch (const std::exception& e) {
        error(e.what());
    }
    std::fflush(out_);
    return true;
}

void ChatSession::set(const std::string& args) {
    SamplingOptions& s = settings_.sampling;
    if (args.empty()) {
        std::fprintf(out_,
                     "temp %g\ntop-k %d\ntop-p %g\nmin-p %g\nrepeat-penalty %g\nrepeat-last-n %d\n"
                     "presence-penalty %g\nfrequency-penalty %g\nseed %s\nn-predict %d\n",
                     s.temperature, s.top_k, s.top_p, s.min_p, s.repeat_penalty, s.repeat_last_n, s.presence_penalty,
                     s.frequency_penalty, s.seed ? std::to_string(*s.seed).c_str() : "random", settings_.n_predict);
        return;
    }
    std::istringstream words(args);
    std::string key, value, extra;
    words >> key >> value >> extra;
    if (value.empty() || !extra.empty()) throw std::runtime_error("usage: /set NAME VALUE (see /help)");
    std::replace(key.begin(), key.end(), '_', '-');
    if (key == "temperature") key = "temp";
    if (key == "n" || key == "max-tokens") key = "n-predict";

    // The same option definitions as the command line, so names, ranges and messages agree.
    ChatSettings next = settings_;
    if (key == "seed" && value == "random") {
        next.sampling.seed.reset();
    } else {
        OptionParser parser("/set NAME VALUE");
        parser.add_sampling_options(next.sampling);
        parser.value({"--n-predict"}, "N", "", [&](const std::string& v) {
            next.n_predict = parse_int("n-predict", v, -1, 1 << 30);
        });
        try {
            parser.parse({"/set", "--" + key, value});
        } catch (const UsageError& e) {
            if (std::string(e.what()).starts_with("unknown option"))
                throw std::runtime_error("unknown setting '" + key + "'; /set alone lists them");
            throw;
        }
    }
    settings_ = next;
    notice("(" + key + " = " + value + ")");
}

void ChatSession::stats() const {
    const Context& ctx = *model_.context;
    std::fprintf(out_, "context: %zu of %lld tokens in use, %zu messages\n", session_.tokens().size(),
                 (long long)ctx.n_ctx(), conversation_.messages().size());
    if (have_last_) {
        const auto& r = last_;
        const double pp = r.prompt_seconds > 0 ? double(r.n_prompt_evaluated) / r.prompt_seconds : 0;
        const double tg = r.generation_seconds > 0 ? double(r.tokens.size()) / r.generation_seconds : 0;
        std::fprintf(out_, "last prompt: %lld tokens, %lld evaluated, %lld reused from the cache, %.1f tokens/s\n",
                     (long long)r.n_prompt, (long long)r.n_prompt_evaluated,
                     (long long)(r.n_prompt - r.n_prompt_evaluated), pp);
        std::fprintf(out_, "last answer: %zu tokens in %.2f s, %.1f tokens/s, finish: %s\n", r.tokens.size(),
                     r.generation_seconds, tg, finish_reason_name(r.finish));
    }
    std::fprintf(out_, "prompt tokens evaluated in this chat: %lld\n", (long long)total_prompt_evaluated_);
}

}  // namespace kiln::cli
