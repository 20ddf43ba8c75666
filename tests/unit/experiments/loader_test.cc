#include "experiments/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "faults/core/duration.h"
#include "test_util.h"

namespace faultline::experiments {
namespace {

using testing::All;
using ::testing::HasSubstr;

constexpr const char* kGood = R"(apiVersion: faultline/v1
kind: Experiment
metadata:
  name: leader-pause
  description: pause the leader
spec:
  seed: 7
  workload:
    kind: kv
    clients: 4
    rate: 100
    readPercent: 50
    warmup: 5s
  steps:
    - name: pause
      fault:
        process:
          action: pause
          target: {managed: etcd}
      target:
        role: leader
        mode: one
        matchLabels: {app: etcd}
      duration: 20s
    - wait: 5s
    - parallel:
        - fault: {process: {action: kill, target: {managed: etcd}, restart_after: 1s}}
          target: {role: followers, mode: fixed, value: 1}
        - fault: {process: {action: signal, signal: 1, target: {managed: etcd}}}
          target: {members: [etcd-2], mode: all}
  checks: [health, hashkv, Key-Diff]
  slo:
    p99Latency: 500ms
    timeToLeader: 5s
  schedule:
    cron: "@every 10m"
    concurrencyPolicy: forbid
    startingDeadlineSeconds: 60
    historyLimit: 3
)";

TEST(NativeLoader, LoadsEveryPartOfAnExperiment) {
  auto r = LoadString(kGood, "good.yaml");
  ASSERT_TRUE(r.ok()) << All(r);
  ASSERT_EQ(r.experiments.size(), 1u);
  const auto& e = r.experiments[0];
  EXPECT_EQ(e.name(), "leader-pause");
  EXPECT_EQ(e.description(), "pause the leader");
  EXPECT_EQ(e.seed(), 7u);
  EXPECT_EQ(e.source_kind(), "faultline/v1 Experiment");
  EXPECT_EQ(e.workload().kind(), v1::Workload::KV);
  EXPECT_EQ(e.workload().clients(), 4u);
  EXPECT_DOUBLE_EQ(e.workload().read_percent(), 50);
  EXPECT_EQ(e.workload().warmup().seconds(), 5);
  ASSERT_EQ(e.steps_size(), 3);
  const auto& s0 = e.steps(0);
  EXPECT_EQ(s0.fault().process().action(), v1::ProcessFault::PAUSE);
  EXPECT_EQ(s0.fault().process().target().managed(), "etcd");
  EXPECT_EQ(s0.target().role(), v1::TargetSelector::LEADER);
  EXPECT_EQ(s0.target().mode(), v1::TargetSelector::ONE);
  EXPECT_EQ(s0.target().match_labels().at("app"), "etcd");
  EXPECT_EQ(s0.duration().seconds(), 20);
  EXPECT_FALSE(s0.fault().has_duration()) << "fault durations come from the step";
  EXPECT_EQ(e.steps(1).wait().seconds(), 5);
  ASSERT_EQ(e.steps(2).parallel_size(), 2);
  EXPECT_EQ(e.steps(2).parallel(0).fault().process().restart_after().seconds(), 1);
  EXPECT_EQ(e.steps(2).parallel(0).target().mode(), v1::TargetSelector::FIXED);
  EXPECT_EQ(e.steps(2).parallel(0).target().value(), 1u);
  EXPECT_EQ(e.steps(2).parallel(1).target().members(0), "etcd-2");
  ASSERT_EQ(e.checks_size(), 3);
  EXPECT_EQ(e.checks(2), v1::KEY_DIFF) << "enum names match case-insensitively, '-' as '_'";
  EXPECT_EQ(faults::FromProto(e.slo().p99_latency()), std::chrono::milliseconds(500));
  EXPECT_EQ(e.schedule().cron(), "@every 10m");
  EXPECT_EQ(e.schedule().concurrency_policy(), v1::Schedule::FORBID);
  EXPECT_EQ(e.schedule().starting_deadline_seconds(), 60);
  EXPECT_EQ(e.schedule().history_limit(), 3u);
}

TEST(NativeLoader, SeedDefaultsToAStableHashOfTheName) {
  std::string text = kGood;
  text.replace(text.find("  seed: 7\n"), 10, "");
  auto a = LoadString(text, "a.yaml");
  auto b = LoadString(text, "b.yaml");
  ASSERT_TRUE(a.ok()) << All(a);
  EXPECT_NE(a.experiments[0].seed(), 0u);
  EXPECT_EQ(a.experiments[0].seed(), b.experiments[0].seed());
}

TEST(NativeLoader, MalformedYamlGivesLineAndColumn) {
  auto r =
      LoadString("apiVersion: faultline/v1\nkind: Experiment\nspec:\n  steps: [a, b\n", "bad.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0].ToString(), ::testing::StartsWith("bad.yaml:"));
  EXPECT_GE(r.errors[0].line, 4);
  EXPECT_GT(r.errors[0].column, 0);
  EXPECT_THAT(r.errors[0].message, HasSubstr("malformed YAML"));
  EXPECT_TRUE(r.experiments.empty());
}

// 1-based line and column of the first `needle` in `text`, as an editor shows them.
std::pair<int, int> Pos(const std::string& text, const std::string& needle) {
  auto at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
  auto bol = text.rfind('\n', at);
  int col = static_cast<int>(at - (bol == std::string::npos ? 0 : bol + 1)) + 1;
  return {line, col};
}

// Replaces `from` (which must occur once) in the good document.
std::string With(const std::string& from, const std::string& to) {
  std::string text = kGood;
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from << " occurs twice";
  text.replace(at, from.size(), to);
  return text;
}

TEST(NativeLoader, UnknownFieldIsAnErrorWithPositionAndPath) {
  std::string text =
      With("          action: pause\n", "          action: pause\n          sigal: 9\n");
  auto r = LoadString(text, "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  auto [line, col] = Pos(text, "sigal");
  EXPECT_EQ(r.errors[0].line, line);
  EXPECT_EQ(r.errors[0].column, col);
  EXPECT_EQ(r.errors[0].path, "spec.steps[0].fault.process.sigal");
  EXPECT_THAT(r.errors[0].ToString(),
              ::testing::StartsWith("exp.yaml:" + std::to_string(line) + ":" + std::to_string(col) +
                                    ": spec.steps[0].fault.process.sigal: unknown "
                                    "field; known fields: action, target, signal"));
  EXPECT_TRUE(r.experiments.empty()) << "nothing is half-loaded";
}

TEST(NativeLoader, BadEnumNamesTheChoices) {
  std::string text = With("action: pause", "action: freeze");
  auto r = LoadString(text, "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.steps[0].fault.process.action");
  EXPECT_EQ(std::make_pair(r.errors[0].line, r.errors[0].column), Pos(text, "freeze"));
  EXPECT_THAT(r.errors[0].message, HasSubstr("unknown value 'freeze'; expected one of: signal, "
                                             "kill, pause, restart"));
}

TEST(NativeLoader, BadAndNegativeDurations) {
  std::string text = With("duration: 20s", "duration: 20 seconds");
  auto r = LoadString(text, "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.steps[0].duration");
  EXPECT_EQ(std::make_pair(r.errors[0].line, r.errors[0].column), Pos(text, "20 seconds"));
  EXPECT_THAT(r.errors[0].message, HasSubstr("bad duration '20 seconds'"));
  r = LoadString(With("duration: 20s", "duration: -20s"), "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.steps[0].duration");
}

TEST(NativeLoader, WrongTypes) {
  auto r = LoadString(With("clients: 4", "clients: [4]"), "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.workload.clients");
  EXPECT_THAT(r.errors[0].message, HasSubstr("expected a scalar, got a list"));
  r = LoadString(With("clients: 4", "clients: four"), "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_THAT(r.errors[0].message, HasSubstr("expected a non-negative integer"));
  r = LoadString(With("clients: 4", "clients: -4"), "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  r = LoadString(With("checks: [health, hashkv, Key-Diff]", "checks: health"), "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.checks");
  EXPECT_THAT(r.errors[0].message, HasSubstr("expected a list, got a scalar"));
}

TEST(NativeLoader, CollectsEveryErrorNotJustTheFirst) {
  std::string text = With("action: pause", "action: freeze");
  text.replace(text.find("clients: 4"), 10, "clients: x");
  text.replace(text.find("timeToLeader: 5s"), 16, "timeToLeadr: 5s");
  text.replace(text.find("readPercent: 50"), 15, "readPercent: 150");
  auto r = LoadString(text, "exp.yaml");
  ASSERT_EQ(r.errors.size(), 4u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.workload.clients");
  EXPECT_EQ(r.errors[1].path, "spec.workload.readPercent");
  EXPECT_THAT(r.errors[1].message, HasSubstr("0..100"));
  EXPECT_EQ(r.errors[2].path, "spec.steps[0].fault.process.action");
  EXPECT_EQ(r.errors[3].path, "spec.slo.timeToLeadr");
}

TEST(NativeLoader, FaultDurationAndSeedBelongToTheStep) {
  auto r =
      LoadString(With("          target: {managed: etcd}\n      target:",
                      "          target: {managed: etcd}\n        duration: 3s\n      target:"),
                 "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.steps[0].fault.duration");
  EXPECT_THAT(r.errors[0].message, HasSubstr("write the duration on the step"));
}

TEST(NativeLoader, OneFamilyPerFault) {
  auto r = LoadString(With("          target: {managed: etcd}\n      target:",
                           "          target: {managed: etcd}\n        io: {}\n      target:"),
                      "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.steps[0].fault.io");
  EXPECT_THAT(r.errors[0].message, HasSubstr("only one of the 'fault' fields"));
}

TEST(NativeLoader, StructuralChecksPointAtTheStep) {
  // A fault step without a target, a step with both fault and wait, fixed mode without a count.
  std::string text = With(
      "      target:\n        role: leader\n        mode: one\n        "
      "matchLabels: {app: etcd}\n",
      "");
  text.replace(text.find("    - wait: 5s\n"), 15, "    - wait: 5s\n      duration: 1s\n");
  text.replace(text.find("mode: fixed, value: 1"), 21, "mode: fixed");
  auto r = LoadString(text, "exp.yaml");
  ASSERT_EQ(r.errors.size(), 3u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.steps[0]");
  EXPECT_THAT(r.errors[0].message, HasSubstr("target: required"));
  EXPECT_EQ(r.errors[0].line, Pos(text, "- name: pause").first);
  EXPECT_EQ(r.errors[1].path, "spec.steps[1].duration");
  EXPECT_THAT(r.errors[1].message, HasSubstr("only fault steps"));
  EXPECT_EQ(r.errors[2].path, "spec.steps[2].parallel[0].target.value");
  EXPECT_THAT(r.errors[2].message, HasSubstr("count >= 1"));
}

TEST(NativeLoader, ModeIsRequiredUnlessTheTargetIsASingleMember) {
  auto r = LoadString(
      With("target: {role: followers, mode: fixed, value: 1}", "target: {role: followers}"),
      "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.steps[2].parallel[0].target.mode");
  // The leader and one named member are one agent by definition.
  EXPECT_TRUE(LoadString(With("        mode: one\n", ""), "exp.yaml").ok());
  EXPECT_TRUE(
      LoadString(With("target: {members: [etcd-2], mode: all}", "target: {members: [etcd-2]}"),
                 "exp.yaml")
          .ok());
}

TEST(NativeLoader, SameAsNamesAFaultStepThatEndedBefore) {
  // The parallel branch's kill may reuse the agents of "pause" (two steps earlier).
  const std::string kill = "target: {role: followers, mode: fixed, value: 1}";
  auto ok = LoadString(With(kill, "target: {sameAs: pause}"), "exp.yaml");
  ASSERT_TRUE(ok.ok()) << All(ok);
  EXPECT_EQ(ok.experiments[0].steps(2).parallel(0).target().same_as(), "pause");

  auto unknown = LoadString(With(kill, "target: {sameAs: nope}"), "exp.yaml");
  ASSERT_EQ(unknown.errors.size(), 1u) << All(unknown);
  EXPECT_EQ(unknown.errors[0].path, "spec.steps[2].parallel[0].target.sameAs");
  EXPECT_THAT(unknown.errors[0].message, HasSubstr("no fault step named \"nope\""));

  auto mixed = LoadString(With(kill, "target: {sameAs: pause, mode: one}"), "exp.yaml");
  ASSERT_EQ(mixed.errors.size(), 1u) << All(mixed);
  EXPECT_THAT(mixed.errors[0].message, HasSubstr("stands alone"));

  // A branch running beside the named step cannot reuse what it has not hit yet.
  std::string text = With(kill, "target: {sameAs: hup}");
  const std::string hup = "- fault: {process: {action: signal";
  text.replace(text.find(hup), 2, "- name: hup\n          ");
  auto sibling = LoadString(text, "exp.yaml");
  ASSERT_EQ(sibling.errors.size(), 1u) << All(sibling);
  EXPECT_EQ(sibling.errors[0].path, "spec.steps[2].parallel[0].target.sameAs");
}

TEST(NativeLoader, MissingDurationOnALastingFault) {
  auto r = LoadString(With("      duration: 20s\n", ""), "exp.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.steps[0].duration");
  EXPECT_THAT(r.errors[0].message, HasSubstr("required"));
}

// What a family refuses is refused when the experiment is loaded (and so when it is submitted to
// the controller), with the step's field path and the line it was written on.
TEST(NativeLoader, FamilyRulesRefuseABadSpecAtLoadNamingTheField) {
  constexpr const char* kBad = R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: bad-specs}
spec:
  steps:
    - fault:
        io:
          action: latency
          mount: /var/lib/etcd
          maxCount: -1
      target: {role: leader}
      duration: 10s
    - fault: {net: {action: delay, delay: 10ms, to: [10.0.0.300/32]}}
      target: {role: leader}
      duration: 10s
    - fault: {process: {action: signal, signal: 99, target: {managed: etcd}}}
      target: {role: leader}
)";
  auto r = LoadString(kBad, "bad.yaml");
  std::vector<std::string> paths;
  for (const auto& d : r.errors) paths.push_back(d.path);
  EXPECT_THAT(paths, ::testing::UnorderedElementsAre(
                         "spec.steps[0].fault.io.delay", "spec.steps[0].fault.io.maxCount",
                         "spec.steps[1].fault.net.to[0]", "spec.steps[2].fault.process.signal"))
      << All(r);
  for (const auto& d : r.errors) {
    if (d.path == "spec.steps[0].fault.io.maxCount") {
      EXPECT_EQ(d.line, 10);
    }
    if (d.path == "spec.steps[2].fault.process.signal") {
      EXPECT_THAT(d.message, HasSubstr("1 and 64"));
    }
  }
}

TEST(NativeLoader, LabelPlaceholdersAreCheckedPerAgentNotAtLoad) {
  // ${label:member} is filled by the runner for each agent; the regex is only whole then.
  auto r = LoadString(R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: placeholder}
spec:
  steps:
    - fault: {process: {action: pause, target: {cmdline: "--name ${label:member} "}}}
      target: {role: leader}
      duration: 5s
)",
                      "p.yaml");
  EXPECT_TRUE(r.ok()) << All(r);
}

// An experiment of one step: a process fault `fault` (flow YAML) on `target`.
LoadResult LoadProcessStep(const std::string& fault, const std::string& target) {
  return LoadString(
      "apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: k}\nspec:\n"
      "  steps:\n    - fault: {process: " +
          fault + "}\n      target: " + target + "\n",
      "k.yaml");
}

TEST(NativeLoader, OneShotRuleIsTheProcessFamilys) {
  auto load = [](const std::string& fault) { return LoadProcessStep(fault, "{role: leader}"); };
  // A kill is over at once: no duration needed.
  EXPECT_TRUE(load("{action: kill, target: {managed: etcd}}").ok());
  // A kill that restarts later lasts until the restart: that is its duration.
  auto r = load("{action: kill, target: {managed: etcd}, restartAfter: 3s}");
  ASSERT_TRUE(r.ok()) << All(r);
  EXPECT_EQ(r.experiments[0].steps(0).duration().seconds(), 3);
  // A pause lasts: it needs one.
  r = load("{action: pause, target: {managed: etcd}}");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.steps[0].duration");
}

// A rejoin ends when its member is back in the cluster; a duration only keeps it down longer.
TEST(NativeLoader, RejoinNeedsNoDurationButOnlyAManagedEtcd) {
  auto load = [](const std::string& fault) { return LoadProcessStep(fault, "{members: [e2]}"); };
  auto r = load("{action: rejoin, target: {managed: etcd}}");
  ASSERT_TRUE(r.ok()) << All(r);
  EXPECT_EQ(r.experiments[0].steps(0).fault().process().action(), v1::ProcessFault::REJOIN);
  r = load("{action: rejoin, target: {name: etcd}}");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.steps[0].fault.process.target");
}

TEST(NativeLoader, CronIsCheckedByTheCallersParser) {
  LoadOptions o;
  o.validate_cron = [](const std::string& c) {
    return c == "@every 10m" ? std::string() : "bad cron";
  };
  EXPECT_TRUE(LoadString(kGood, "exp.yaml", o).ok());
  std::string text = With("@every 10m", "@every ten");
  auto r = LoadString(text, "exp.yaml", o);
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.schedule.cron");
  EXPECT_EQ(r.errors[0].line, Pos(text, "cron:").first);
}

TEST(NativeLoader, HeaderErrors) {
  auto r = LoadString("kind: Experiment\nmetadata: {name: x}\nspec: {}\n", "h.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "apiVersion");
  r = LoadString("apiVersion: faultline/v2\nkind: Experiment\n", "h.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].ToString().substr(0, 11), "h.yaml:1:13");
  r = LoadString(
      "apiVersion: faultline/v1\nkind: Experiment\nmetadata: {}\nspec:\n  steps: []\n"
      "extra: 1\n",
      "h.yaml");
  ASSERT_EQ(r.errors.size(), 2u) << All(r);
  EXPECT_EQ(r.errors[0].path, "extra");
  EXPECT_EQ(r.errors[1].path, "metadata.name");
  r = LoadString(
      "apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: x}\nspec:\n"
      "  steps: []\n",
      "h.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_EQ(r.errors[0].path, "spec.steps") << "no step is an error once the document reads";
  EXPECT_EQ(r.errors[0].line, 5);
}

TEST(NativeLoader, SeveralDocumentsAndDuplicateNames) {
  std::string two = std::string(kGood) + "---\n" + With("name: leader-pause", "name: other");
  auto r = LoadString(two, "two.yaml");
  ASSERT_TRUE(r.ok()) << All(r);
  EXPECT_EQ(r.experiments.size(), 2u);
  r = LoadString(std::string(kGood) + "---\n" + kGood, "dup.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << All(r);
  EXPECT_THAT(r.errors[0].message, HasSubstr("duplicate experiment name"));
}

TEST(NativeLoader, WorkloadTrafficKinds) {
  const std::string traffic = R"(    kind: txn
    watchers:
      - {start: past, offset: 50, prevKv: true}
      - {start: compacted, reopen: 5s}
      - {start: future, progressNotify: true, requestProgress: 2s, readDelay: 250ms}
    compaction: {every: 10s, after: 5s, at: delete, physical: true}
    defragment: {atTimes: [20s, 40s], members: all}
    pastReads: {percent: 20, behind: 5}
    leases: {clients: 2, ttl: 5s, keys: 3, keepAlives: 4}
    kubernetes: {clients: 3, objects: 7, resource: configmaps}
)";
  auto r = LoadString(With("    kind: kv\n", traffic), "exp.yaml");
  ASSERT_TRUE(r.ok()) << All(r);
  const auto& w = r.experiments[0].workload();
  ASSERT_EQ(w.watchers_size(), 3);
  EXPECT_EQ(w.watchers(0).start(), v1::Watcher::PAST);
  EXPECT_EQ(w.watchers(0).offset(), 50u);
  EXPECT_TRUE(w.watchers(0).prev_kv());
  EXPECT_EQ(w.watchers(1).reopen().seconds(), 5);
  EXPECT_TRUE(w.watchers(2).progress_notify());
  EXPECT_EQ(w.watchers(2).request_progress().seconds(), 2);
  EXPECT_EQ(w.watchers(2).read_delay().nanos(), 250000000);
  EXPECT_EQ(w.compaction().at(), v1::Compaction::DELETE);
  EXPECT_EQ(w.compaction().after().seconds(), 5);
  EXPECT_TRUE(w.compaction().physical());
  EXPECT_EQ(w.defragment().at_times_size(), 2);
  EXPECT_EQ(w.defragment().members(), v1::Defragment::ALL);
  EXPECT_DOUBLE_EQ(w.past_reads().percent(), 20);
  EXPECT_EQ(w.leases().keys(), 3u);
  EXPECT_EQ(faults::FromProto(w.leases().ttl()), std::chrono::seconds(5));
  EXPECT_EQ(w.kubernetes().resource(), "configmaps");

  auto checks =
      LoadString(With("checks: [health, hashkv, Key-Diff]", "checks: [watch, leases, past-reads]"),
                 "exp.yaml");
  ASSERT_EQ(checks.errors.size(), 2u) << All(checks);
  EXPECT_EQ(checks.errors[0].path, "spec.checks[1]");
  EXPECT_THAT(checks.errors[0].message, HasSubstr("leases traffic"));
  EXPECT_EQ(checks.errors[1].path, "spec.checks[2]");
  EXPECT_THAT(checks.errors[1].message, HasSubstr("pastReads or kubernetes"));
}

TEST(NativeLoader, LivenessSerializableReadsAndExpiringLeases) {
  std::string text = With("    kind: kv\n",
                          "    kind: kv\n    serializableReadPercent: 30\n"
                          "    leases: {ttl: 5s, keys: 1, expire: true}\n");
  const std::string checks = "checks: [health, hashkv, Key-Diff]";
  text.replace(text.find(checks), checks.size(),
               "checks: [health, liveness, serializable-reads, leases]");
  auto r = LoadString(text, "exp.yaml");
  ASSERT_TRUE(r.ok()) << All(r);
  const auto& e = r.experiments[0];
  EXPECT_DOUBLE_EQ(e.workload().serializable_read_percent(), 30);
  EXPECT_TRUE(e.workload().leases().expire());
  ASSERT_EQ(e.checks_size(), 4);
  EXPECT_EQ(e.checks(1), v1::LIVENESS);
  EXPECT_EQ(e.checks(2), v1::SERIALIZABLE_READS);
  // serializable-reads with no serializable read to judge, and a share beyond 100, are refused.
  auto none =
      LoadString(With("checks: [health, hashkv, Key-Diff]", "checks: [health, serializable-reads]"),
                 "exp.yaml");
  ASSERT_EQ(none.errors.size(), 1u) << All(none);
  EXPECT_EQ(none.errors[0].path, "spec.checks[1]");
  EXPECT_THAT(none.errors[0].message, HasSubstr("serializableReadPercent"));
  auto over = LoadString(With("    kind: kv\n", "    kind: kv\n    serializableReadPercent: 150\n"),
                         "exp.yaml");
  ASSERT_EQ(over.errors.size(), 1u) << All(over);
  EXPECT_EQ(over.errors[0].path, "spec.workload.serializableReadPercent");
}

TEST(NativeLoader, WorkloadTrafficErrorsNameTheField) {
  const std::string bad = R"(    kind: kv
    watchers:
      - {start: current, offset: 3}
      - {start: compacted, requestProgress: 10ms, readDelay: 11s}
    compaction: {after: 5s, at: behind}
    defragment: {members: one}
    pastReads: {behind: 2}
    leases: {ttl: 1s, keys: 500}
    kubernetes: {resource: Pods}
)";
  auto r = LoadString(With("    kind: kv\n", bad), "exp.yaml");
  std::vector<std::string> paths;
  for (const auto& e : r.errors) paths.push_back(e.path);
  EXPECT_THAT(paths,
              ::testing::ElementsAre(
                  "spec.workload.watchers[0].offset", "spec.workload.watchers[1].requestProgress",
                  "spec.workload.watchers[1].readDelay", "spec.workload.compaction",
                  "spec.workload.compaction.after", "spec.workload.compaction.behind",
                  "spec.workload.defragment", "spec.workload.pastReads",
                  "spec.workload.pastReads.percent", "spec.workload.leases.ttl",
                  "spec.workload.leases.keys", "spec.workload.kubernetes.resource"))
      << All(r);
  auto none = LoadString(With("    kind: kv\n", "    kind: none\n    leases: {}\n"), "exp.yaml");
  ASSERT_EQ(none.errors.size(), 1u) << All(none);
  EXPECT_EQ(none.errors[0].path, "spec.workload.kind");
  EXPECT_THAT(none.errors[0].message, HasSubstr("runs no traffic"));
}

TEST(NativeLoader, MissingFileIsAnError) {
  auto r = LoadFile("/nonexistent/x.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0].ToString(), HasSubstr("/nonexistent/x.yaml"));
  EXPECT_THROW(LoadFileOrThrow("/nonexistent/x.yaml"), LoadError);
}

}  // namespace
}  // namespace faultline::experiments
