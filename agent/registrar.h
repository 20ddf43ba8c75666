#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "faultline/v1/controller.grpc.pb.h"
#include "proto/transport/tls.h"

namespace faultline::agent {

// The agent's side of controller registration: registers (address, labels, capabilities), then
// heartbeats at the interval the controller asks for, and registers again whenever the
// controller says it does not know the agent (it restarted) or a heartbeat fails. Runs on its
// own thread; a controller that is down only delays registration, it never blocks the agent.
class Registrar {
 public:
  struct Options {
    std::string controller;  // "unix:///run/faultline/controller.sock" or HOST:PORT
    // The agent's client certificate and the CA that verifies the controller; needed for TCP
    // off loopback (transport::Dial).
    transport::TlsFiles tls;
    v1::AgentRegistration registration;
    // Fills `active_fault_ids` for each heartbeat (may be empty).
    std::function<std::vector<std::string>()> active_faults;
    std::chrono::milliseconds retry{2000};
  };

  // Throws std::invalid_argument when the controller cannot be dialed with these files.
  explicit Registrar(Options options);
  ~Registrar();  // stops the thread
  Registrar(const Registrar&) = delete;
  Registrar& operator=(const Registrar&) = delete;

  bool registered() const;
  int registrations() const;

 private:
  void Loop();
  bool Register();
  Options opt_;
  std::unique_ptr<v1::Controller::Stub> stub_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool registered_ = false;
  int registrations_ = 0;
  std::chrono::milliseconds interval_{5000};
  std::thread thread_;
};

}  // namespace faultline::agent
