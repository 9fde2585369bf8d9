// Grain's index shuffle (MapDataset.shuffle): the position of each index in a permutation
// of [0, max_index] given by a Simon-style Feistel cipher on the smallest even block of at
// least 16 bits that holds max_index, with round keys from std::seed_seq{seed}, walked
// until the result falls in range. Reproduced here so the whole permutation is computed in
// one call instead of one Python call per file.
#pragma once

#include <cstdint>

namespace pyimgdir {

uint64_t index_shuffle(uint64_t index, uint64_t max_index, uint32_t seed, int rounds = 4);

// out[i] = index_shuffle(i, n - 1, seed, rounds) for every i < n, on up to `threads` threads.
void index_shuffle_permutation(int64_t n, uint32_t seed, int rounds, int64_t* out, int threads = 0);

}  // namespace pyimgdir
