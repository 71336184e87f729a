// A StatsResponse filled from PageStats, by the one table of counters
// (server/store/page_stats.h).

#ifndef ZPAGED_SERVER_RPC_STATS_RESPONSE_H_
#define ZPAGED_SERVER_RPC_STATS_RESPONSE_H_

#include "server/store/page_stats.h"
#include "zpaged/v1/page_store.pb.h"

namespace zpaged {

// Sets every field of `response` that kPageStatFields names, and density.
void FillStatsResponse(const PageStats& stats, v1::StatsResponse* response);

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_STATS_RESPONSE_H_
