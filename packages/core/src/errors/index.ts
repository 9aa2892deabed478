export * from './StrataError.js';
