#include "faults/metrics/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace faultline::metrics {
namespace {

MHD_Result Handle(void* cls, MHD_Connection* conn, const char* url, const char* method, const char*,
                  const char*, size_t*, void**) {
  auto* render = static_cast<std::function<std::string()>*>(cls);
  std::string body;
  unsigned status = MHD_HTTP_OK;
  if (std::strcmp(method, "GET") != 0) {
    status = MHD_HTTP_METHOD_NOT_ALLOWED;
    body = "only GET\n";
  } else if (std::strcmp(url, "/metrics") == 0) {
    body = (*render)();
  } else if (std::strcmp(url, "/healthz") == 0) {
    body = "ok\n";
  } else {
    status = MHD_HTTP_NOT_FOUND;
    body = "try /metrics\n";
  }
  MHD_Response* resp =
      MHD_create_response_from_buffer(body.size(), body.data(), MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
  MHD_Result r = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return r;
}

}  // namespace

MetricsServer::MetricsServer(const std::string& listen, std::function<std::string()> render)
    : render_(std::move(render)) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("--metrics-listen: want HOST:PORT");
  std::string host = listen.substr(0, colon);
  std::string port_text = listen.substr(colon + 1);
  int port = -1;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    throw std::invalid_argument("--metrics-listen: bad port '" + port_text + "' (want 0..65535)");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    throw std::invalid_argument("--metrics-listen: not an IPv4 address: " + host);
  }
  daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                             static_cast<uint16_t>(port), nullptr, nullptr, &Handle, &render_,
                             MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_END);
  if (daemon_ == nullptr) throw std::runtime_error("cannot listen for /metrics on " + listen);
  const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
  port_ = info ? info->port : port;
}

MetricsServer::~MetricsServer() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

}  // namespace faultline::metrics
