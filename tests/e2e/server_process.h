#pragma once
// Starts the real `kiln serve` on a free loopback port (--port 0; the port is
// read from its first line of output) and stops it with SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "e2e/run_process.h"
#include "test_paths.h"

namespace kiln::test {

class ServerProcess {
public:
    // `args` are shell words after `kiln serve --port 0`. Waits for "ready" unless wait_ready is false.
    explicit ServerProcess(const std::string& args, bool wait_ready = true, const std::string& env = "") {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
        const std::string cmd = env + " exec " + shell_quote(kiln_binary()) + " serve --port 0 " + args + " 2>/tmp/kiln-serve-test.err";
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(fds[1], 1);
            ::close(fds[0]);
            ::close(fds[1]);
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(fds[1]);
        out_fd_ = fds[0];
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (std::chrono::steady_clock::now() < deadline) {
            if (port_ == 0) {
                auto p = output_.find("listening on http://127.0.0.1:");
                if (p != std::string::npos && output_.find(' ', p + 30) != std::string::npos)
                    port_ = std::stoi(output_.substr(p + 30));
            }
            if (port_ != 0 && (!wait_ready || output_.find("ready") != std::string::npos)) return;
            pollfd pfd{out_fd_, POLLIN, 0};
            if (::poll(&pfd, 1, 100) > 0) {
                char buf[512];
                const ssize_t n = ::read(out_fd_, buf, sizeof buf);
                if (n <= 0) break;
                output_.append(buf, size_t(n));
            }
        }
        stop();
        throw std::runtime_error("kiln serve did not start; output: " + output_);
    }
    ~ServerProcess() { stop(); }

    int port() const { return port_; }
    const std::string& output() const { return output_; }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port_);
        c.set_read_timeout(120, 0);
        c.set_write_timeout(60, 0);
        c.set_connection_timeout(5, 0);
        return c;
    }
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            for (int i = 0; i < 100; ++i) {
                if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                    pid_ = -1;
                    break;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
            if (pid_ > 0) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, nullptr, 0);
                pid_ = -1;
            }
        }
        if (out_fd_ >= 0) ::close(out_fd_);
        out_fd_ = -1;
    }

private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
    int port_ = 0;
    std::string output_;
};

// The JSON objects of an SSE body's `data:` events, and whether [DONE] came last.
struct SseEvents {
    std::vector<nlohmann::json> events;
    bool done_last = false;
    int n_done = 0;
};
inline SseEvents parse_sse(const std::string& body) {
    SseEvents r;
    size_t start = 0;
    while (start < body.size()) {
        size_t end = body.find("\n\n", start);
        if (end == std::string::npos) end = body.size();
        const std::string ev = body.substr(start, end - start);
        start = end + 2;
        if (ev.rfind("data: ", 0) != 0) continue;
        const std::string data = ev.substr(6);
        if (data == "[DONE]") {
            ++r.n_done;
            r.done_last = true;
            continue;
        }
        r.done_last = false;
        r.events.push_back(nlohmann::json::parse(data));
    }
    return r;
}

// A raw HTTP request over a socket: for bodies and disconnects httplib's client cannot make.
inline int connect_loopback(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace kiln::test
