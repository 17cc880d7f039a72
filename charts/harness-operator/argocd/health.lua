-- Argo CD health check for harness.dev/HarnessDeployment (harness-operator).
-- The status follows kstatus (sigs.k8s.io/cli-utils pkg/kstatus): observedGeneration and
-- the Reconciling, Stalled and Ready conditions, the ones Flux reads, in the same order; a
-- paused release is Suspended here. Phases and conditions: docs/gitops.md in harness-operator.
-- Written for gopher-lua without the standard libraries (Argo CD's default): base and table
-- functions only, no string library.
hs = {}

local function condition(conditionType)
  if obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

-- A spec the operator has not read yet says nothing about the new spec.
local generation = obj.metadata.generation
if obj.status == nil or obj.status.observedGeneration == nil
    or (generation ~= nil and obj.status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. tostring(generation or 1)
  return hs
end

local ready = condition("Ready")
local message = obj.status.message
if message == nil and ready ~= nil then
  message = ready.message
end

-- Rolled back, a credential refused by the provider, or a spec that cannot be realised:
-- nothing moves until something outside the operator changes.
local stalled = condition("Stalled")
if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end

-- A release held by the harness.dev/pause annotation.
if obj.status.phase == "Paused" then
  hs.status = "Suspended"
  hs.message = message
  return hs
end

-- A release or first rollout in flight, or a stable track that is not available yet.
if isTrue(condition("Reconciling")) or not isTrue(ready) then
  hs.status = "Progressing"
  hs.message = message
  return hs
end

hs.status = "Healthy"
hs.message = message
return hs
