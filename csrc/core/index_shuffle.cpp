#include "core/index_shuffle.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace pyimgdir {
namespace {

struct Cipher {
    int word = 8;  // bits per half block
    uint64_t mask = 0xFF;
    std::vector<uint64_t> keys;

    Cipher(uint64_t max_index, uint32_t seed, int rounds) {
        int block = static_cast<int>(std::ceil(std::log2(static_cast<double>(max_index))));
        block = std::max(block + block % 2, 16);
        if (block > 64) block = 64;
        word = block / 2;
        mask = word == 32 ? 0xFFFFFFFFull : ((uint64_t(1) << word) - 1);
        std::vector<uint32_t> k(static_cast<size_t>(rounds));
        std::seed_seq seq{seed};
        seq.generate(k.begin(), k.end());
        for (uint32_t v : k) keys.push_back(v & mask);
    }

    uint64_t rotl(uint64_t x, int r) const { return ((x << r) | (x >> (word - r))) & mask; }
    uint64_t f(uint64_t x) const { return (rotl(x, 1) & rotl(x, 8)) ^ rotl(x, 2); }

    uint64_t encrypt(uint64_t v) const {
        uint64_t left = (v >> word) & mask, right = v & mask;
        for (size_t i = 0; i + 1 < keys.size(); i += 2) {
            left ^= f(right) ^ keys[i];
            right ^= f(left) ^ keys[i + 1];
        }
        return (left << word) | right;
    }

    uint64_t shuffle(uint64_t index, uint64_t max_index) const {
        uint64_t v = index;
        do {
            v = encrypt(v);
        } while (v > max_index);
        return v;
    }
};

void check_rounds(int rounds) {
    if (rounds < 4 || rounds % 2 != 0) throw std::invalid_argument("rounds must be an even integer >= 4");
}

}  // namespace

uint64_t index_shuffle(uint64_t index, uint64_t max_index, uint32_t seed, int rounds) {
    check_rounds(rounds);
    if (index > max_index) throw std::invalid_argument("index must be in [0, max_index]");
    if (max_index == 0) return 0;
    return Cipher(max_index, seed, rounds).shuffle(index, max_index);
}

void index_shuffle_permutation(int64_t n, uint32_t seed, int rounds, int64_t* out, int threads) {
    check_rounds(rounds);
    if (n <= 0) return;
    if (n == 1) {
        out[0] = 0;
        return;
    }
    const uint64_t max_index = static_cast<uint64_t>(n - 1);
    const Cipher c(max_index, seed, rounds);
    auto run = [&](int64_t from, int64_t to) {
        for (int64_t i = from; i < to; ++i) out[i] = static_cast<int64_t>(c.shuffle(static_cast<uint64_t>(i), max_index));
    };
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, n >> 18)));
    if (threads <= 1) {
        run(0, n);
        return;
    }
    std::vector<std::thread> pool;
    const int64_t step = (n + threads - 1) / threads;
    for (int t = 1; t < threads; ++t)
        pool.emplace_back(run, std::min(n, t * step), std::min(n, (t + 1) * step));
    run(0, std::min(n, step));
    for (auto& th : pool) th.join();
}

}  // namespace pyimgdir
