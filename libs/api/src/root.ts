import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import { router } from './trpc';
import { projectsRouter } from './router/projects';
import { runsRouter } from './router/runs';
import { metricsRouter } from './router/metrics';
import { samplesRouter } from './router/samples';
import { artifactsRouter } from './router/artifacts';
import { eventsRouter } from './router/events';
import { alertsRouter } from './router/alerts';
import { compareRouter } from './router/compare';
import { launchRouter, sweepsRouter } from './router/sweeps';
import { auditRouter, invitationsRouter, keysRouter, teamsRouter } from './router/teams';
import { viewsRouter } from './router/views';
import { fleetRouter } from './router/fleet';

export const appRouter = router({
  projects: projectsRouter,
  runs: router({ ...runsRouter, ...launchRouter }),
  sweeps: sweepsRouter,
  metrics: metricsRouter,
  samples: samplesRouter,
  artifacts: artifactsRouter,
  events: eventsRouter,
  alerts: alertsRouter,
  compare: compareRouter,
  teams: teamsRouter,
  invitations: invitationsRouter,
  keys: keysRouter,
  audit: auditRouter,
  views: viewsRouter,
  fleet: fleetRouter,
});

export type AppRouter = typeof appRouter;

/** Every procedure's input and output types, for clients (web, SDK) that must not re-declare them. */
export type RouterInputs = inferRouterInputs<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;
