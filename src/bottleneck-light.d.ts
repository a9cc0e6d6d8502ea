// bottleneck ships typings for its main entry only; light.js (no clustering) has the same API, and is what @octokit/plugin-throttling uses.
declare module 'bottleneck/light.js' {
  import Bottleneck from 'bottleneck';
  export default Bottleneck;
}
