export { initBackend, BACKENDS, type BackendInfo, type BackendName } from './backend';
