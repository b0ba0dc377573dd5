// The data access of the MLflow-compatible API (libs/api/src/mlflow): its SQL lives here, as all SQL does.
export * from './filter';
export * from './experiments';
export * from './runs';
export * from './metrics';
export * from './artifacts';
