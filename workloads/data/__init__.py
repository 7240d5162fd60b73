"""Input pipelines: readers that validate what they load and raise spec.DataError with the fix."""
