-- Sign-in attempts per account and per client address, counted in fixed windows (libs/db/src/sign-in-throttle.ts).
-- In Postgres rather than a process's memory so that every web server sees the same counts.
CREATE TABLE "sign_in_throttle" (
    "key" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL,
    "window_start" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "sign_in_throttle_pkey" PRIMARY KEY ("key")
);
CREATE INDEX "sign_in_throttle_window_start_idx" ON "sign_in_throttle"("window_start");
