"""Pure domain: entities, states, policy. No I/O and no clock: `now` is always passed in."""
