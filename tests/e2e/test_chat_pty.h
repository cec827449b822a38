#pragma once
// Drives a command in a pseudo-terminal, as a user at a keyboard would: what it
// writes is collected, keys are written to it, and a test waits for text to appear.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

namespace kiln::test {

class Pty {
public:
    // Runs `command` with /bin/sh -c in a 120x40 terminal with `env` added.
    Pty(const std::string& command, const std::map<std::string, std::string>& env) {
        winsize ws{};
        ws.ws_row = 40;
        ws.ws_col = 120;
        pid_ = ::forkpty(&master_, nullptr, nullptr, &ws);
        if (pid_ == 0) {
            for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
            ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~Pty() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (master_ >= 0) ::close(master_);
    }
    Pty(const Pty&) = delete;
    Pty& operator=(const Pty&) = delete;

    bool started() const { return pid_ > 0 && master_ >= 0; }

    void send(const std::string& keys) {
        size_t done = 0;
        while (done < keys.size()) {
            const ssize_t n = ::write(master_, keys.data() + done, keys.size() - done);
            if (n <= 0) return;
            done += size_t(n);
        }
    }
    // A line as typed: the text, then Enter; the pause keeps lines typed one after
    // another from looking like a paste.
    // A control key right after the prompt appears. libedit prints the prompt
    // before it switches the terminal out of canonical mode, and a Ctrl-D that
    // lands in between is an end-of-file the switch discards; a person cannot type
    // that fast, so wait as a person would (type_line waits the same way).
    void press(const std::string& key) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        send(key);
    }

    void type_line(const std::string& text) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        send(text);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        send("\r");
    }

    // Waits until `needle` appears after the read cursor; returns what came before it
    // and moves the cursor past it. Empty optional-like: returns false on timeout or EOF.
    bool expect(const std::string& needle, std::string* before = nullptr, double timeout_s = 30) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
        for (;;) {
            const auto hit = output_.find(needle, cursor_);
            if (hit != std::string::npos) {
                if (before) *before = output_.substr(cursor_, hit - cursor_);
                cursor_ = hit + needle.size();
                return true;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !read_some(int(left.count()))) return false;
        }
    }

    // Reads until the child closes the terminal; returns its exit code (-1 on timeout).
    int wait_exit(double timeout_s = 30) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
        while (std::chrono::steady_clock::now() < deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (!read_some(int(std::max<int64_t>(1, left.count())))) break;
        }
        int status = 0;
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                exited_ = true;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return -1;
    }

    const std::string& output() const { return output_; }
    std::string rest() const { return output_.substr(cursor_); }
    size_t cursor() const { return cursor_; }

private:
    // false on EOF/timeout
    bool read_some(int timeout_ms) {
        pollfd p{master_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) return false;
        char buf[4096];
        const ssize_t n = ::read(master_, buf, sizeof buf);
        if (n <= 0) return false;  // EIO once the child side is closed
        output_.append(buf, size_t(n));
        return true;
    }

    pid_t pid_ = -1;
    int master_ = -1;
    bool exited_ = false;
    std::string output_;
    size_t cursor_ = 0;
};

}  // namespace kiln::test
