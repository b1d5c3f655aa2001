// The fast layer's tests take seconds: one that hangs (waiting for a skip it never asked for) fails soon.
jest.setTimeout(30_000);
