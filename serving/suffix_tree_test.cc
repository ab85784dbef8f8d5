// The suffix tree against brute-force substring counts, and SuffixDecoding's proposals.
#include "serving/suffix_tree.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "serving/suffix_speculator.h"

namespace weft::serving {
namespace {

using Tokens = std::vector<int32_t>;

// Occurrences of every substring of up to `depth` tokens across `seqs`.
std::map<Tokens, int> brute_counts(const std::vector<Tokens>& seqs, int depth) {
  std::map<Tokens, int> out;
  for (const Tokens& s : seqs) {
    for (size_t i = 0; i < s.size(); ++i) {
      for (size_t k = i + 1; k <= s.size() && k - i <= static_cast<size_t>(depth); ++k) {
        ++out[Tokens(s.begin() + i, s.begin() + k)];
      }
    }
  }
  return out;
}

TEST(SuffixTree, CountsEverySubstringUpToTheDepthAndForgetsRemovedSequences) {
  std::mt19937 rng(7);
  SuffixTree t(5);
  std::vector<Tokens> seqs(6);
  std::vector<int> ids;
  for (auto& s : seqs) {
    ids.push_back(t.add_sequence());
    const int n = 10 + static_cast<int>(rng() % 30);
    for (int k = 0; k < n; ++k) s.push_back(static_cast<int32_t>(rng() % 4));
  }
  // Appended in pieces of varying size, interleaved across sequences.
  std::vector<size_t> done(seqs.size(), 0);
  for (bool more = true; more;) {
    more = false;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const size_t take = std::min<size_t>(1 + rng() % 4, seqs[i].size() - done[i]);
      t.append(ids[i], std::span<const int32_t>(seqs[i].data() + done[i], take));
      done[i] += take;
      more |= done[i] < seqs[i].size();
    }
  }
  auto check = [&](const std::vector<Tokens>& live) {
    const auto want = brute_counts(live, 5);
    EXPECT_EQ(t.nodes(), want.size() + 1);  // one node per distinct substring, and the root
    for (const auto& [path, count] : want) {
      // Each count, seen as the probability of the path's last token after the rest of it.
      if (path.size() < 2) continue;
      const SuffixTree::Match m = t.match(Tokens(path.begin(), path.end() - 1));
      if (m.length != static_cast<int>(path.size()) - 1) continue;  // a shorter suffix matched
      const Proposal p = t.propose(m, 1000, 0.0f);
      bool found = false;
      for (size_t j = 0; j < p.tokens.size(); ++j) {
        if (p.parents[j] == -1 && p.tokens[j] == path.back()) {
          EXPECT_FLOAT_EQ(p.probs[j], static_cast<float>(count) / static_cast<float>(t.count(m.node)));
          found = true;
        }
      }
      EXPECT_TRUE(found);
    }
  };
  check(seqs);
  // Matching a sequence's own end through its known suffix nodes finds what walking finds.
  for (size_t i = 0; i < seqs.size(); ++i) {
    for (size_t cut = 1; cut <= 6; ++cut) {
      const Tokens context(seqs[i].begin() + static_cast<long>(cut), seqs[i].end());
      const SuffixTree::Match walked = t.match(context), known = t.match(context, ids[i]);
      EXPECT_EQ(walked.length, known.length);
      EXPECT_EQ(walked.node, known.node);
    }
  }
  t.remove_sequence(ids[1]);
  t.remove_sequence(ids[4]);
  check({seqs[0], seqs[2], seqs[3], seqs[5]});
  for (int id : {ids[0], ids[2], ids[3], ids[5]}) t.remove_sequence(id);
  EXPECT_EQ(t.nodes(), 1u);
}

TEST(SuffixTree, MatchesTheLongestSuffixThatHasAContinuation) {
  SuffixTree t(8);
  const int s = t.add_sequence();
  t.append(s, Tokens{1, 2, 3, 4, 9, 2, 3, 5});
  // Context ending in 1 2 3: "1 2 3" occurred, followed by 4.
  SuffixTree::Match m = t.match(Tokens{7, 1, 2, 3});
  EXPECT_EQ(m.length, 3);
  Proposal p = t.propose(m, 10, 0.0f);
  ASSERT_FALSE(p.tokens.empty());
  EXPECT_EQ(p.tokens[0], 4);
  EXPECT_EQ(p.parents[0], -1);
  EXPECT_FLOAT_EQ(p.probs[0], 1.0f);
  // Context ending in "2 3" alone: followed once by 4 and once by 5.
  m = t.match(Tokens{8, 2, 3});
  EXPECT_EQ(m.length, 2);
  p = t.propose(m, 10, 0.0f);
  ASSERT_GE(p.tokens.size(), 2u);
  EXPECT_FLOAT_EQ(p.probs[0], 0.5f);
  EXPECT_FLOAT_EQ(p.probs[1], 0.5f);
  // Nothing matches: the root, length 0.
  m = t.match(Tokens{42});
  EXPECT_EQ(m.length, 0);
}

TEST(SuffixTree, ProposalsGrowBestFirstAndStopAtTheBudgetOrTheMinimumProbability) {
  SuffixTree t(16);
  const int s = t.add_sequence();
  // After "0": 1 2 3 three times, 1 4 once, 5 once.
  t.append(s, Tokens{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 4, 0, 5, 9});
  const SuffixTree::Match m = t.match(Tokens{0});
  ASSERT_EQ(m.length, 1);
  Proposal p = t.propose(m, 10, 0.0f);
  // Best first: 1 (4/5... of the 5 occurrences of "0" followed by something), then 2 under it.
  ASSERT_GE(p.tokens.size(), 4u);
  EXPECT_EQ(p.tokens[0], 1);
  EXPECT_EQ(p.tokens[1], 2);
  EXPECT_EQ(p.parents[1], 0);
  for (size_t j = 1; j < p.probs.size(); ++j) EXPECT_LE(p.probs[j], p.probs[j - 1]);
  float sum = 0;
  for (float q : p.probs) sum += q;
  EXPECT_FLOAT_EQ(p.score, sum);
  for (size_t j = 0; j < p.parents.size(); ++j) EXPECT_LT(p.parents[j], static_cast<int32_t>(j));
  EXPECT_EQ(t.propose(m, 2, 0.0f).tokens.size(), 2u);
  const Proposal likely = t.propose(m, 10, 0.5f);
  for (float q : likely.probs) EXPECT_GE(q, 0.5f);
  EXPECT_LT(likely.tokens.size(), p.tokens.size());
}

TEST(SuffixSpeculator, ProposesWhatTheRequestRepeatsAndCachesResponsesFirstInFirstOut) {
  SuffixSpeculator s({.max_depth = 32, .max_spec_tokens = 8, .max_cached_requests = 2});
  const Tokens phrase = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  Tokens prompt = {1, 2};
  prompt.insert(prompt.end(), phrase.begin(), phrase.end());
  prompt.push_back(3);
  s.start(1, prompt, {});
  s.extend(1, Tokens{10, 11, 12});  // the request starts repeating the phrase
  Proposal p = s.propose(1, 100);
  ASSERT_FALSE(p.tokens.empty());
  EXPECT_EQ(p.tokens[0], 13);
  EXPECT_LE(p.tokens.size(), 3u);  // adaptive: factor 1 x match length 3
  s.extend(1, Tokens{13, 14, 15, 16});
  p = s.propose(1, 100);
  // The rest of the phrase, then what followed it in the prompt and the output: 7 nodes for a
  // 7-token match.
  EXPECT_EQ(p.tokens, (Tokens{17, 18, 19, 3, 10, 11, 12}));
  EXPECT_EQ(s.propose(1, 2).tokens.size(), 2u);  // the caller's budget holds
  s.finish(1);

  // Another request gets request 1's response from the global tree.
  s.start(2, Tokens{5, 6}, {});
  s.extend(2, Tokens{13, 14, 15});
  p = s.propose(2, 100);
  ASSERT_FALSE(p.tokens.empty());
  EXPECT_EQ(p.tokens[0], 16);
  s.start(3, Tokens{7}, {});
  s.start(4, Tokens{8}, {});  // two more responses: request 1's and request 2's are evicted
  EXPECT_EQ(s.cached_responses(), 2u);
  s.finish(2);
  s.start(5, Tokens{13, 14, 15}, {});
  EXPECT_TRUE(s.propose(5, 100).tokens.empty());   // nothing cached continues 13 14 15 any more
  EXPECT_TRUE(s.propose(99, 100).tokens.empty());  // unknown request
}

}  // namespace
}  // namespace weft::serving
