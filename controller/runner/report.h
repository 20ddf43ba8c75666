#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "controller/runner/run_result.h"
#include "faults/sys/atomic_file.h"

namespace faultline::controller {

// JUnit XML: one <testsuite> per run, one <testcase> per check and SLO (classname
// "<experiment>.checks" or "<experiment>.slo"); a failed one carries <failure> whose message is
// the check's summary and whose text is its evidence. A run that errored before its checks gets
// one failing testcase "run" with the error, so a gate never reads an empty suite as green.
std::string RenderJUnit(const std::vector<RunResult>& runs);

// A self-contained HTML page (no external assets): verdict, checks, an inline SVG timeline
// (workload p50/p99 per second, leader per member, fault windows) and the event list.
std::string RenderHtml(const RunResult& r);

// Writes report.json, junit.xml and report.html into `dir` (created), atomically per file.
void WriteReports(const RunResult& r, const std::filesystem::path& dir);

using sys::WriteFileAtomic;

std::string XmlEscape(const std::string& s);

}  // namespace faultline::controller
