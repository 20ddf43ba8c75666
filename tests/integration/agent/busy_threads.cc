// A process whose threads never sleep: the target a pause must stop entirely, not just signal.
// Usage: agent_busy_threads N — N spinning threads besides the main one; runs until killed.
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 4;
  std::atomic<unsigned long> sink{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&] {
      for (;;) sink.fetch_add(1, std::memory_order_relaxed);
    });
  }
  for (;;) sink.fetch_add(1, std::memory_order_relaxed);
}
