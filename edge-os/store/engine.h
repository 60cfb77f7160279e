#pragma once

// The overrides every store engine declares, written once (the interface is store.h).
#include "edge-os/store/store.h"

// NOLINTBEGIN(cppcoreguidelines-macro-usage)
#define SEGWAN_STORE_ENGINE_OVERRIDES \
  int SchemaVersion() override; \
  int LatestSchemaVersion() const override; \
  Result<uint64_t> NextId(const std::string& sequence) override; \
  Status PutTenant(const Tenant& t) override; \
  Result<std::vector<Tenant>> Tenants() override; \
  Status PutDevice(const Device& d) override; \
  Result<std::vector<Device>> Devices() override; \
  Result<std::optional<Device>> GetDevice(const std::string& id) override; \
  Status DeleteDevice(const std::string& id) override; \
  Status PutEnrolment(const Enrolment& e) override; \
  Result<std::vector<Enrolment>> Enrolments() override; \
  Status DeleteEnrolment(const std::string& device_id) override; \
  Status PutSlice(const Slice& s) override; \
  Result<std::vector<Slice>> Slices() override; \
  Status DeleteSlice(const std::string& id) override; \
  Status PutSession(const DelaySession& s) override; \
  Result<std::vector<DelaySession>> Sessions() override; \
  Status DeleteSession(const std::string& id) override; \
  Result<SessionCounters> Counters(const std::string& session_id) override; \
  Status WriteBatches(const std::vector<SessionBatch>& batches, const std::vector<ResultCursor>& cursors) override; \
  Result<std::vector<ResultCursor>> ResultCursors() override; \
  Result<std::vector<Sample>> Samples(const std::string& session_id, uint64_t since_t1, size_t limit) override; \
  Result<uint64_t> SampleCount(const std::string& session_id) override; \
  Result<std::optional<int64_t>> LastAggregateEnd(const std::string& session_id) override; \
  Result<std::vector<IntervalAggregate>> Aggregates(const std::string& session_id, int64_t since_ms, \
                                                    size_t limit) override; \
  Status PutLossSession(const LossSession& s) override; \
  Result<std::vector<LossSession>> LossSessions() override; \
  Status DeleteLossSession(const std::string& id) override; \
  Result<LossCursor> GetLossCursor(const std::string& id) override; \
  Status WriteLossPeriod(const std::string& id, const std::optional<LossPeriod>& period, \
                         const LossCursor& cursor) override; \
  Result<std::optional<LossPeriod>> LastLossPeriod(const std::string& id) override; \
  Result<std::vector<LossPeriod>> LossPeriods(const std::string& id, int64_t since_ms, size_t limit) override; \
  Status PutSla(const SlaClass& c) override; \
  Result<std::vector<SlaClass>> Slas() override; \
  Status DeleteSla(const std::string& id) override; \
  Status PutPolicy(const SteeringPolicy& p, const std::vector<SteeringChoice>& choices) override; \
  Result<std::vector<SteeringPolicy>> Policies() override; \
  Status DeletePolicy(const std::string& id) override; \
  Status PutChoice(const SteeringChoice& c, const std::vector<SteeringEvent>& events) override; \
  Result<std::vector<SteeringChoice>> Choices() override; \
  Status AddEvents(const std::vector<SteeringEvent>& events) override; \
  Result<std::vector<SteeringEvent>> Events(const std::string& tenant, const std::string& slice, int64_t before_id, \
                                            size_t limit) override; \
  Status PutWebhook(const Webhook& w) override; \
  Result<std::vector<Webhook>> Webhooks() override; \
  Status DeleteWebhook(const std::string& tenant_id) override; \
  Result<uint64_t> Prune(uint64_t samples_before_t1, int64_t aggregates_before_ms) override;
// NOLINTEND(cppcoreguidelines-macro-usage)
