// test_cxx: a C++ program on hakmem (issue 2, "Real programs" and "C++
// new/delete work through them").
//
// First, operator new and delete in their forms (plain, array, aligned,
// nothrow, sized delete) must hand out hakmem's blocks, and an impossible
// new must throw std::bad_alloc (nothrow: return nullptr).  Then a few
// threads churn std containers (vector, map, unordered_map, string, list,
// shared_ptr passed between threads) and each result is compared with the
// value computed independently with plain arithmetic.
#include "testutil.h"

#include <atomic>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

const int kThreads = 4;
const int kRounds = 40;
const uint64_t kN = 20000;

uint64_t digits(uint64_t x)
{
    uint64_t d = 1;
    while (x >= 10) {
        x /= 10;
        d++;
    }
    return d;
}

void check_owned(const void *p, const char *what)
{
    CHECK(p != nullptr, "%s returned nullptr", what);
    CHECK(owned(p) == 1, "%s = %p is not hakmem's: C++ allocation does not go through hakmem",
          what, p);
}

void test_new_delete()
{
    void *p = ::operator new(t_size(100));
    check_owned(p, "operator new(100)");
    ::operator delete(p);

    int *a = new int[1000];
    check_owned(a, "new int[1000]");
    for (int i = 0; i < 1000; i++)
        a[i] = i;
    delete[] a;

    std::string *s = new std::string(1000, 'q');
    check_owned(s, "new std::string");
    check_owned(s->data(), "std::string buffer");
    delete s;

    for (size_t al = 16; al <= (1u << 20); al *= 4) {
        void *q = ::operator new(t_size(300), std::align_val_t(al));
        check_owned(q, "aligned operator new");
        CHECK(IS_ALIGNED(q, al), "operator new(300, align %zu) = %p misaligned", al, q);
        memset(q, 1, 300);
        ::operator delete(q, std::align_val_t(al));
    }
    struct alignas(128) Wide {
        char c[200];
    };
    Wide *w = new Wide[3];
    check_owned(w, "new Wide[3]");
    CHECK(IS_ALIGNED(w, 128), "new of an alignas(128) type = %p misaligned", (void *)w);
    delete[] w;

    // sized delete
    void *z = ::operator new(t_size(48));
    check_owned(z, "operator new(48)");
    ::operator delete(z, 48);

    // impossible sizes
    bool threw = false;
    try {
        void *huge = ::operator new(t_size(SIZE_MAX / 4));
        ::operator delete(huge);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, "operator new(SIZE_MAX/4) did not throw std::bad_alloc");
    void *nt = ::operator new(t_size((size_t)1 << 48), std::nothrow);
    CHECK(nt == nullptr, "operator new(2^48, nothrow) = %p, not nullptr", nt);

    std::vector<double> v(5000, 1.5);
    check_owned(v.data(), "std::vector buffer");
}

// ---- the container churn --------------------------------------------------

struct Shared {
    std::mutex lock;
    std::deque<std::shared_ptr<std::vector<uint64_t>>> q;
};
Shared shared;
std::atomic<uint64_t> consumed_sum{0};
std::atomic<uint64_t> produced_sum{0};

struct Result {
    uint64_t vec_sum = 0, map_len = 0, umap_sum = 0, str_len = 0, str_found = 0, list_len = 0;
};

uint64_t vec_sum_of(const std::shared_ptr<std::vector<uint64_t>> &p)
{
    uint64_t s = 0;
    for (uint64_t x : *p)
        s += x;
    return s;
}

void churn(int t, Result *res)
{
    for (int round = 0; round < kRounds; round++) {
        // vector: push_back grows through many reallocations
        std::vector<uint64_t> v;
        for (uint64_t i = 0; i < kN; i++)
            v.push_back(i * (uint64_t)(t + 1));
        uint64_t s = 0;
        for (uint64_t x : v)
            s += x;
        res->vec_sum += s;

        // map of strings, half erased
        std::map<uint64_t, std::string> m;
        for (uint64_t i = 0; i < kN; i++)
            m[i] = std::to_string(i);
        for (uint64_t i = 0; i < kN; i += 2)
            m.erase(i);
        for (const auto &kv : m)
            res->map_len += kv.second.size();

        // unordered_map with rehashing
        std::unordered_map<uint64_t, uint64_t> u;
        for (uint64_t i = 0; i < kN; i++)
            u.emplace(i, i * i);
        for (uint64_t i = 0; i < kN; i += 3)
            res->umap_sum += u.at(i);

        // string building
        std::string str;
        for (uint64_t i = 0; i < kN; i++) {
            str += "abc";
            str += std::to_string(i % 100);
        }
        res->str_len += str.size();
        res->str_found += str.find("abc99") != std::string::npos ? 1 : 0;

        // list of strings, some removed
        std::list<std::string> l;
        for (uint64_t i = 0; i < kN / 4; i++)
            l.emplace_back((size_t)(i % 50), 'x');
        l.remove_if([](const std::string &x) { return x.size() % 2 == 1; });
        for (const auto &x : l)
            res->list_len += x.size();

        // shared_ptrs to other threads: the last owner frees, often
        // on another thread than the allocating one
        for (uint64_t i = 0; i < 200; i++) {
            uint64_t k = 1 + (i * 7 + (uint64_t)t) % 300;
            auto p = std::make_shared<std::vector<uint64_t>>(k, i + 1);
            produced_sum += k * (i + 1);
            std::lock_guard<std::mutex> g(shared.lock);
            shared.q.push_back(std::move(p));
        }
        for (int i = 0; i < 200; i++) {
            std::shared_ptr<std::vector<uint64_t>> p;
            {
                std::lock_guard<std::mutex> g(shared.lock);
                if (shared.q.empty())
                    break;
                p = std::move(shared.q.front());
                shared.q.pop_front();
            }
            consumed_sum += vec_sum_of(p);
        }
    }
}

}  // namespace

int main()
{
    test_init("test_cxx");
    test_new_delete();

    std::vector<Result> results(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++)
        threads.emplace_back(churn, t, &results[t]);
    for (auto &th : threads)
        th.join();
    // drain what is left
    while (!shared.q.empty()) {
        consumed_sum += vec_sum_of(shared.q.front());
        shared.q.pop_front();
    }

    // the same numbers by arithmetic, with no allocation at all
    uint64_t odd_digits = 0, umap = 0, strlen_ = 0, listlen = 0, produced = 0;
    for (uint64_t i = 1; i < kN; i += 2)
        odd_digits += digits(i);
    for (uint64_t i = 0; i < kN; i += 3)
        umap += i * i;
    for (uint64_t i = 0; i < kN; i++)
        strlen_ += 3 + digits(i % 100);
    for (uint64_t i = 0; i < kN / 4; i++)
        if ((i % 50) % 2 == 0)
            listlen += i % 50;
    for (int t = 0; t < kThreads; t++)
        for (uint64_t i = 0; i < 200; i++)
            produced += (1 + (i * 7 + (uint64_t)t) % 300) * (i + 1);
    produced *= kRounds;

    for (int t = 0; t < kThreads; t++) {
        const Result &r = results[t];
        uint64_t vec = (uint64_t)kRounds * (uint64_t)(t + 1) * (kN * (kN - 1) / 2);
        CHECK(r.vec_sum == vec, "thread %d: vector sum %llu, expected %llu", t,
              (unsigned long long)r.vec_sum, (unsigned long long)vec);
        CHECK(r.map_len == kRounds * odd_digits, "thread %d: map lengths %llu, expected %llu", t,
              (unsigned long long)r.map_len, (unsigned long long)(kRounds * odd_digits));
        CHECK(r.umap_sum == kRounds * umap, "thread %d: unordered_map sum %llu, expected %llu", t,
              (unsigned long long)r.umap_sum, (unsigned long long)(kRounds * umap));
        CHECK(r.str_len == kRounds * strlen_, "thread %d: string length %llu, expected %llu", t,
              (unsigned long long)r.str_len, (unsigned long long)(kRounds * strlen_));
        CHECK(r.str_found == (uint64_t)kRounds, "thread %d: string search failed", t);
        CHECK(r.list_len == kRounds * listlen, "thread %d: list lengths %llu, expected %llu", t,
              (unsigned long long)r.list_len, (unsigned long long)(kRounds * listlen));
    }
    CHECK(produced_sum.load() == produced, "shared_ptr production %llu, expected %llu",
          (unsigned long long)produced_sum.load(), (unsigned long long)produced);
    CHECK(consumed_sum.load() == produced, "shared_ptr consumption %llu, expected %llu",
          (unsigned long long)consumed_sum.load(), (unsigned long long)produced);
    printf("test_cxx: ok (checksum %llu)\n",
           (unsigned long long)(produced + results[0].map_len + results[0].umap_sum));
    return 0;
}
