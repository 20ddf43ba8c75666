// faultline: the one command users type.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "cli/agent_commands.h"
#include "cli/commands.h"
#include "cli/global_options.h"
#include "cli/inject_command.h"

namespace {

// CLI11 reports a mistyped subcommand as "A subcommand is required"; say which word was wrong
// and what would have been accepted.
std::string ExplainUnknownSubcommand(CLI::App& app, int argc, char** argv) {
  CLI::App* current = &app;
  std::string path = "faultline";
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if (word.starts_with("-")) {
      // Skip the value of an option that takes one ("--agent PATH").
      if (word.find('=') == std::string::npos && i + 1 < argc) {
        for (CLI::App* a = current; a != nullptr; a = a->get_parent()) {
          const CLI::Option* opt = a->get_option_no_throw(word);
          if (opt != nullptr) {
            if (opt->get_expected_max() > 0) ++i;
            break;
          }
        }
      }
      continue;
    }
    auto subs = current->get_subcommands([](CLI::App*) { return true; });
    if (subs.empty()) return "";
    CLI::App* next = nullptr;
    std::string names;
    for (auto* s : subs) {
      if (s->get_name() == word) next = s;
      if (!s->get_name().empty()) names += (names.empty() ? "" : ", ") + s->get_name();
    }
    if (next == nullptr) {
      if (current->get_require_subcommand_min() == 0) return "";
      return "unknown " + std::string(path == "faultline inject" ? "fault kind" : "command") +
             " \"" + word + "\" for \"" + path + "\" (one of: " + names + ")";
    }
    current = next;
    path += " " + word;
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace faultline::cli;
  CLI::App app{"faultline: chaos engineering for etcd"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "help for every command");
  GlobalOptions g;
  if (const char* env = std::getenv("FAULTLINE_AGENT")) g.agent.address = env;
  app.add_option("--agent", g.agent.address,
                 "agent address: unix socket path or HOST:PORT (env FAULTLINE_AGENT)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("-o,--output", g.output, "output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--tls-ca", g.agent.tls.ca, "CA (PEM) to verify the agent/controller over TCP");
  app.add_option("--tls-cert", g.agent.tls.cert, "client certificate (PEM) for mTLS");
  app.add_option("--tls-key", g.agent.tls.key, "client key (PEM) for mTLS");
  app.add_option("--tls-server-name", g.agent.tls.server_name,
                 "verify the server's certificate for this name, not the address (e.g. "
                 "faultline-agent, which every agent certificate of certs init carries)");
  AddInjectCommand(app, g);
  AddAgentCommands(app, g);
  AddAreaCommands(app, g);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, whatever CLI11 would have printed, and a usage exit code.
    std::string better = ExplainUnknownSubcommand(app, argc, argv);
    std::cerr << "faultline: " << (better.empty() ? e.what() : better) << " (see --help)\n";
    return kExitUsage;
  } catch (const RpcError& e) {
    std::cerr << "faultline: error: " << e.what() << "\n";
    return ExitCode(OutcomeOfRpc(e.code()));
  } catch (const std::invalid_argument& e) {
    // Bad flags found past parsing (a missing certificate, plaintext off loopback, ...).
    std::cerr << "faultline: error: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "faultline: error: " << e.what() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}
