#pragma once

#include <functional>
#include <string>

struct MHD_Daemon;

namespace faultline::metrics {

// Serves GET /metrics (Prometheus text format) over HTTP with libmicrohttpd, which owns the
// socket and threads; `render` is called per scrape.
class MetricsServer {
 public:
  // listen: "HOST:PORT", HOST an IPv4 address or localhost; port 0 picks a free port (see
  // port()). Throws std::invalid_argument on a malformed address.
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

}  // namespace faultline::metrics
