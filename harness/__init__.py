"""The harness: loads a submission, trains it on a workload under the step budget, records results."""
