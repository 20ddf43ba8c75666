#pragma once

#include <functional>
#include <string>

struct MHD_Daemon;

namespace faultline::agent {

// Serves GET /metrics (Prometheus text format) over HTTP with libmicrohttpd, which owns the
// socket and threads; `render` is called per scrape.
class MetricsServer {
 public:
  // listen: "HOST:PORT" (IPv4 or [IPv6]); port 0 picks a free port (see port()).
  MetricsServer(const std::string& listen, std::function<std::string()> render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  int port() const { return port_; }

 private:
  std::function<std::string()> render_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
};

}  // namespace faultline::agent
