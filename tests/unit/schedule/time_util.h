#pragma once

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "controller/schedule/cron.h"

namespace faultline::controller::testing {

// "2026-03-01 12:34:56" (UTC) as a time point; this libstdc++ has no chrono::parse.
inline Seconds T(const std::string& s) {
  int y, mo, d, h, mi, se;
  if (std::sscanf(s.c_str(), "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6) {
    throw std::invalid_argument(s);
  }
  using namespace std::chrono;
  return sys_days(year(y) / month(static_cast<unsigned>(mo)) / day(static_cast<unsigned>(d))) +
         hours(h) + minutes(mi) + seconds(se);
}

inline std::string Str(Seconds t) {
  using namespace std::chrono;
  auto day = floor<days>(t);
  year_month_day ymd(day);
  hh_mm_ss tod(t - day);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02ld:%02ld:%02ld", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long>(tod.hours().count()), static_cast<long>(tod.minutes().count()),
                static_cast<long>(tod.seconds().count()));
  return buf;
}

}  // namespace faultline::controller::testing
