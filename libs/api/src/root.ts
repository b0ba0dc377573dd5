import { router } from './trpc';
import { projectsRouter } from './router/projects';
import { runsRouter } from './router/runs';
import { metricsRouter } from './router/metrics';
import { samplesRouter } from './router/samples';
import { artifactsRouter } from './router/artifacts';
import { eventsRouter } from './router/events';

export const appRouter = router({
  projects: projectsRouter,
  runs: runsRouter,
  metrics: metricsRouter,
  samples: samplesRouter,
  artifacts: artifactsRouter,
  events: eventsRouter,
});

export type AppRouter = typeof appRouter;
