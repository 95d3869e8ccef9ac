// The in-process communicator: sums and gathers across threads, and a failed rank releasing the others.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "backend/communicator.h"

namespace pensieve::backend {
namespace {

// Runs body(rank) on one thread per rank.
template <typename Body>
void on_threads(int world, Body body) {
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) threads.emplace_back([&, r] { body(r); });
  for (std::thread& t : threads) t.join();
}

TEST(ThreadCommunicator, AllReduceSumsEveryElementOnEveryRank) {
  for (int world : {1, 2, 3, 4, 8}) {
    auto comms = make_thread_communicators(world);
    const size_t n = 1001;  // not a multiple of any world size: the stripes are uneven
    std::vector<std::vector<float>> data(static_cast<size_t>(world));
    on_threads(world, [&](int r) {
      auto& mine = data[static_cast<size_t>(r)];
      for (size_t i = 0; i < n; ++i) mine.push_back(static_cast<float>(i) * 0.5f + static_cast<float>(r * 1000));
      for (int round = 0; round < 3; ++round) comms[static_cast<size_t>(r)]->all_reduce_sum(mine.data(), n);
    });
    for (int r = 0; r < world; ++r) {
      for (size_t i = 0; i < n; ++i) {
        // One round: sum_r (i/2 + 1000 r) = world i/2 + 1000 world(world-1)/2; each later round multiplies by world.
        double expected = world * (i * 0.5) + 1000.0 * world * (world - 1) / 2;
        expected *= world * world;
        ASSERT_FLOAT_EQ(data[static_cast<size_t>(r)][i], static_cast<float>(expected)) << "world " << world << " rank " << r;
      }
    }
  }
}

TEST(ThreadCommunicator, AllReduceGivesBitIdenticalResultsOnEveryRank) {
  const int world = 4;
  auto comms = make_thread_communicators(world);
  std::vector<std::vector<float>> data(world, std::vector<float>(257));
  on_threads(world, [&](int r) {
    for (size_t i = 0; i < 257; ++i) data[static_cast<size_t>(r)][i] = 1.0f / static_cast<float>(i + 1 + 7 * r);
    comms[static_cast<size_t>(r)]->all_reduce_sum(data[static_cast<size_t>(r)].data(), 257);
  });
  for (int r = 1; r < world; ++r) EXPECT_EQ(data[static_cast<size_t>(r)], data[0]) << "rank " << r;
}

TEST(ThreadCommunicator, AllGatherPlacesEachRanksPieceAtItsOffset) {
  const int world = 3;
  auto comms = make_thread_communicators(world);
  std::vector<std::vector<int>> recv(world, std::vector<int>(world * 5, -1));
  on_threads(world, [&](int r) {
    std::vector<int> send(5);
    for (int i = 0; i < 5; ++i) send[static_cast<size_t>(i)] = 100 * r + i;
    comms[static_cast<size_t>(r)]->all_gather(send.data(), send.size() * sizeof(int), recv[static_cast<size_t>(r)].data());
  });
  for (int r = 0; r < world; ++r) {
    for (int q = 0; q < world; ++q) {
      for (int i = 0; i < 5; ++i) EXPECT_EQ(recv[static_cast<size_t>(r)][static_cast<size_t>(q * 5 + i)], 100 * q + i);
    }
  }
}

TEST(ThreadCommunicator, AbortReleasesRanksWaitingForAFailedOne) {
  const int world = 3;
  auto comms = make_thread_communicators(world);
  std::atomic<int> released{0};
  on_threads(world, [&](int r) {
    if (r == 2) {  // fails before its collective and never arrives
      comms[2]->abort();
      return;
    }
    float x = 1.0f;
    try {
      comms[static_cast<size_t>(r)]->all_reduce_sum(&x, 1);
    } catch (const std::runtime_error&) {
      ++released;
    }
  });
  EXPECT_EQ(released.load(), 2);
  float x = 0;
  EXPECT_THROW(comms[0]->all_reduce_sum(&x, 1), std::runtime_error);  // the group stays stopped
}

TEST(ThreadCommunicator, RejectsAnEmptyGroup) { EXPECT_THROW(make_thread_communicators(0), std::invalid_argument); }

// The host-staged group (ranks sharing a GPU) copies through Backend::read / write; over CPU backends the same
// sums and gathers come out.
TEST(StagedCommunicator, CollectivesGoThroughTheBackendsCopies) {
  const int world = 3;
  std::vector<std::unique_ptr<Backend>> backends;
  std::vector<Backend*> ranks;
  for (int r = 0; r < world; ++r) {
    backends.push_back(make_cpu_backend(1));
    ranks.push_back(backends.back().get());
  }
  auto comms = make_staged_communicators(ranks);
  EXPECT_EQ(comms[0]->name(), "host-staged");
  std::vector<Buffer> sums, gathered;
  for (int r = 0; r < world; ++r) {
    std::vector<float> v(100);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i + 1000 * r);
    sums.push_back(ranks[static_cast<size_t>(r)]->upload(v));
    gathered.push_back(ranks[static_cast<size_t>(r)]->allocate(world * sizeof(float)));
  }
  on_threads(world, [&](int r) {
    comms[static_cast<size_t>(r)]->all_reduce_sum(sums[static_cast<size_t>(r)].floats(), 100);
    const float mine = static_cast<float>(r + 1);
    std::vector<float> one(1, mine);
    Buffer send = ranks[static_cast<size_t>(r)]->upload(one);
    comms[static_cast<size_t>(r)]->all_gather(send.data(), sizeof(float), gathered[static_cast<size_t>(r)].data());
  });
  for (int r = 0; r < world; ++r) {
    for (size_t i = 0; i < 100; ++i) ASSERT_EQ(sums[static_cast<size_t>(r)].floats()[i], static_cast<float>(3 * i + 3000));
    for (int q = 0; q < world; ++q) EXPECT_EQ(gathered[static_cast<size_t>(r)].floats()[q], static_cast<float>(q + 1));
  }
}

TEST(Communicators, HostBackendsGetTheThreadGroup) {
  auto a = make_cpu_backend(1), b = make_cpu_backend(1);
  Backend* const ranks[] = {a.get(), b.get()};
  auto comms = make_communicators(ranks);
  ASSERT_EQ(comms.size(), 2u);
  EXPECT_EQ(comms[0]->name(), "threads");
  EXPECT_EQ(comms[1]->rank(), 1);
  EXPECT_EQ(comms[1]->world_size(), 2);
}

}  // namespace
}  // namespace pensieve::backend
